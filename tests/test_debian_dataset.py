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

from optgym.datasets.passes.debian import NAMES, DebianDataset, build


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_names_and_splits() -> None:
    ds = DebianDataset()
    assert ds.uri == "benchmark://debian-v0"
    assert list(ds.benchmark_names()) == ["bzip2", "zlib", "lua5.4", "libgsm"] == NAMES
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
