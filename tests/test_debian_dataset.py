"""``benchmark://debian-v0``: building libgsm's toast from Debian sources, and the errors.

The build test needs apt-get, dpkg-source (dpkg-dev), clang-19, llvm-link-19, opt-19 and
network access to deb.debian.org; it is skipped when a tool is missing.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from optgym.datasets.passes import debian
from optgym.datasets.passes.debian import (
    DATA_FILE,
    NAMES,
    PROGRAMS,
    DebianDataset,
    DebianTrainDataset,
    build,
    build_train,
    load_programs,
    names,
)

FIRST_FOUR = ["bzip2", "zlib", "lua5.4", "libgsm"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_names_and_splits() -> None:
    ds = DebianDataset()
    assert ds.uri == "benchmark://debian-v0"
    assert list(ds.benchmark_names())[:4] == FIRST_FOUR and ds.benchmark_names() == NAMES
    assert len(NAMES) >= 10  # the test set the Coreset-NVP issue grew
    assert list(ds.benchmark_names("test")) == NAMES
    assert list(ds.benchmark_names("train")) == []
    assert list(ds.benchmark_names("validation")) == []
    assert ds.take("test", 2) == ["benchmark://debian-v0/bzip2", "benchmark://debian-v0/zlib"]
    assert "libgsm" in ds.provenance and "1.0.22-1" in ds.provenance
    assert "Zlib" in ds.license and "MIT" in ds.license
    assert DebianDataset.build is build


def test_unknown_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    ds = DebianDataset()
    with pytest.raises(ValueError, match="allowed: bzip2, zlib, lua5.4, libgsm"):
        ds.benchmark("benchmark://debian-v0/gzip")
    with pytest.raises(ValueError, match="not in dataset"):
        ds.benchmark("benchmark://other-v0/bzip2")
    with pytest.raises(ValueError, match="allowed: bzip2, zlib, lua5.4, libgsm"):
        build(["gzip"], progress=False)
    # a train program is not a test benchmark, nor the other way round
    with pytest.raises(ValueError, match="unknown package 'lz4' in debian-train-v0"):
        DebianTrainDataset().benchmark("benchmark://debian-train-v0/lz4")
    with pytest.raises(ValueError, match="unknown package 'bzip2' in debian-train-v0"):
        DebianTrainDataset().benchmark("benchmark://debian-train-v0/bzip2")
    with pytest.raises(ValueError, match="unknown package 'cjson' in debian-v0"):
        ds.benchmark("benchmark://debian-v0/cjson")


def test_unbuilt_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run `optgym datasets build debian-v0`"):
        DebianDataset().benchmark("benchmark://debian-v0/lua5.4")


def test_build_libgsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shas = []
    for cache in ("a", "b"):  # two caches: the bytes must not depend on where it was built
        monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path / cache))
        (path,) = build(["libgsm"], progress=False)
        assert path == tmp_path / cache / "datasets" / "debian-v0" / "libgsm.bc"
        assert path.is_file() and path.stat().st_size > 0
        subprocess.run(["opt-19", "-passes=verify", "-disable-output", str(path)], check=True)
        shas.append(_sha256(path))

        manifest = json.loads((path.parent / "manifest.json").read_text())
        entry = manifest["programs"]["libgsm"]
        assert entry["version"] == "1.0.22-1"
        assert entry["sha256"] == shas[-1]
        assert "src/toast.c" in entry["sources"] and "src/gsm_encode.c" in entry["sources"]
        assert list(manifest["programs"]) == ["libgsm"]

        bench = DebianDataset().benchmark("benchmark://debian-v0/libgsm")
        assert bench.path == path and bench.sha256 == shas[-1]

        # Idempotent: a second call finds the bitcode and leaves it alone.
        mtime = path.stat().st_mtime_ns
        assert build(["libgsm"], progress=False) == [path]
        assert path.stat().st_mtime_ns == mtime

        with pytest.raises(FileNotFoundError, match="optgym datasets build debian-v0"):
            DebianDataset().benchmark("benchmark://debian-v0/bzip2")
    assert shas[0] == shas[1]


def test_train_set_is_disjoint_from_the_test_set_by_package_and_by_content():
    """The data file's recipes: at least 40 train and validation programs, at least 10 test
    ones, no source package in both, and no two with the same recorded bitcode sha256; where
    this machine has built them, the built bitcode too."""
    train, val = names(debian.TRAIN_NAME, "train"), names(debian.TRAIN_NAME, "validation")
    assert len(train) + len(val) >= 40 and len(val) >= 5 and len(NAMES) >= 10
    assert not set(train + val) & set(NAMES)
    assert not set(train) & set(val)
    recorded = [p.sha256 for p in PROGRAMS.values()]
    assert all(len(h) == 64 for h in recorded) and len(set(recorded)) == len(recorded)
    for p in PROGRAMS.values():  # every entry says its license, version and what it is
        assert p.license and p.version and p.program and p.sources
    built: dict[str, str] = {}
    for dataset in (debian.NAME, debian.TRAIN_NAME):
        for name, entry in (debian.read_manifest(dataset).get("programs") or {}).items():
            assert entry["sha256"] not in built, (
                f"{name} has the bitcode of {built.get(entry['sha256'])}"
            )
            built[entry["sha256"]] = name
    ds = DebianTrainDataset()
    assert ds.uri == "benchmark://debian-train-v0" and ds.benchmark_names("test") == []
    assert ds.benchmark_names("train") == train and ds.benchmark_names("validation") == val
    assert DebianTrainDataset.build is build_train
    assert "cjson" in ds.license and "cjson" not in DebianDataset.license


def test_a_build_refuses_a_program_the_other_dataset_holds(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OPTGYM_CACHE", str(tmp_path))
    data = b"BC\xc0\xde not really bitcode"
    with pytest.warns(UserWarning, match="differs from the one its recipe gave"):
        debian._store("bzip2", data, {"uri": "benchmark://debian-v0/bzip2"})
    with pytest.raises(
        RuntimeError,
        match="cjson built to the same bitcode as "
        "benchmark://debian-v0/bzip2: debian-train-v0 and debian-v0 must not",
    ):
        debian._store("cjson", data, {"uri": "benchmark://debian-train-v0/cjson"})
    assert not debian.bitcode_path("cjson").exists()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"name": "../x"}, "is not a new Debian source package name"),
        ({"split": "train"}, "dataset 'debian-v0' with split 'train' is not allowed"),
        ({"dataset": "other-v0"}, "dataset 'other-v0' with split 'test' is not allowed"),
        ({"sources": ["/etc/passwd"]}, "is not a relative path inside the source tree"),
        ({"sources": ["../../x.c"]}, "is not a relative path inside the source tree"),
        ({"write": {"../x.h": ""}}, "is not a relative path inside the source tree"),
        ({"flags": "-O2"}, "flags must be a list of strings"),
        ({"copy": ["a"]}, "copy must map paths to strings"),
        ({"extra": 1}, "unknown fields \\['extra'\\]"),
        ({"license": None}, "license must be a string"),
    ],
)
def test_a_malformed_program_list_names_the_entry_and_the_field(tmp_path, change, match):
    entry = {
        "name": "bzip2", "version": "1.0.8-5", "program": "bzip2", "license": "BSD",
        "dataset": "debian-v0", "split": "test", "sources": ["bzip2.c"],
    }  # fmt: skip
    path = tmp_path / "programs.json"
    path.write_text(json.dumps({"programs": [{**entry, **change}]}))
    with pytest.raises(ValueError, match=match) as e:
        load_programs(path)
    assert "entry 0" in str(e.value)
    for text in ("[1, 2", '{"programs": 3}', "[]"):
        path.write_text(text)
        with pytest.raises(ValueError, match="is not a Debian program list|is not a JSON object"):
            load_programs(path)
    assert load_programs(DATA_FILE) == PROGRAMS
