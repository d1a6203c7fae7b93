"""``benchmark://debian-v0/<package>`` (the test set) and ``benchmark://debian-train-v0/<package>``
(the train and validation sets): real C programs from Debian source packages.

Each benchmark is one program or library (every translation unit it is made of, linked with
llvm-link-19 into a single bitcode module) from a pinned Debian bookworm source package. The
recipes are data, in :data:`DATA_FILE` (``debian_programs.json``): per package its pinned
version, what the bitcode is, the license of the files used, its dataset and split, the C
files in link order, the flags after CompilerGym's cBench flags, the files a configured
build would have (``copy``: a shipped template; ``write``: a generated header's text), and the
sha256 the recipe gave when the file was made.

* ``debian-v0``: 10 programs, all in ``test`` (bzip2, zlib's minigzip, lua, libgsm's toast,
  tree, giflib's gif2rgb, picosat, lmdb, mujs, ed); meant for evaluation only.
* ``debian-train-v0``: 52 programs and libraries, 42 in ``train`` and 10 in ``validation``.
  No source package is in both datasets (names are unique in the data file), and a build
  refuses to store a program whose bitcode another dataset's built program has.

Nothing is shipped: :func:`build` (also ``optgym datasets build debian-v0`` or
``debian-train-v0``) fetches the sources with ``apt-get source`` through a private apt
configuration under the cache (``/etc`` is never touched), compiles each C file with
clang-19 and :data:`CLANG_FLAGS`, links, verifies with opt-19 and stores
``<cache>/datasets/<dataset>/<name>.bc`` with an integrity tag beside it (``<name>.bc.tag``)
plus a ``manifest.json`` recording each file's sha256. Files are compiled by relative path
from inside the unpacked tree, so the bytes do not depend on where the build ran: building
twice gives identical bitcode.

Before use, each file is checked against both its manifest sha256 and its tag: a changed or
replaced ``.bc`` is refused with an error naming it, and ``build`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

from optgym.datasets.cache import cache_dir, write_atomic
from optgym.datasets.dataset import Benchmark, Dataset
from optgym.datasets.files import read_regular
from optgym.datasets.passes.tools import CLANG_FLAGS, run, tool
from optgym.integrity import cache_tag, cache_tag_matches, read_tag, tag_path, write_tagged

NAME = "debian-v0"  # the test set
TRAIN_NAME = "debian-train-v0"  # the train and validation sets
#: The recipes of both datasets: packages, pinned versions, licenses, files and flags.
DATA_FILE = Path(__file__).with_name("debian_programs.json")
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PURPOSE = "debian-bitcode"  # the integrity-tag purpose of the built bitcode
MAX_MANIFEST_BYTES = 1 << 20
MAX_BITCODE_BYTES = 1 << 30


@dataclass(frozen=True)
class Program:
    """How one benchmark is made from its Debian source package (one entry of
    :data:`DATA_FILE`)."""

    name: str  # the benchmark's name (the URI's last part) and the source package
    version: str  # the pinned Debian version, epoch included
    program: str  # what the bitcode is
    license: str
    dataset: str  # debian-v0 (test) or debian-train-v0 (train, validation)
    split: str
    sources: tuple[str, ...]  # paths or globs relative to the unpacked tree, in link order
    flags: tuple[str, ...] = ()  # preprocessor and dialect flags added after CLANG_FLAGS
    exclude: tuple[str, ...] = ()  # files a glob in ``sources`` picks up but must leave out
    copy: tuple[tuple[str, str], ...] = ()  # (dst, src): a configured build's file, copied
    write: tuple[tuple[str, str], ...] = ()  # (path, text): a generated header, written
    notes: str = ""  # anything else done to the tree before compiling
    sha256: str = ""  # what the recipe gave when the data file was made ("" if unknown)

    def source_files(self, tree: Path) -> list[str]:
        """The C files to compile, relative to ``tree``, in a fixed order."""
        files: list[str] = []
        for pattern in self.sources:
            if any(ch in pattern for ch in "*?["):
                found = sorted(p.relative_to(tree).as_posix() for p in tree.glob(pattern))
                if not found:
                    raise FileNotFoundError(f"{self.name}: no file matches {pattern} in {tree}")
                files.extend(f for f in found if f not in self.exclude)
            else:
                if not (tree / pattern).is_file():
                    raise FileNotFoundError(f"{self.name}: {pattern} is missing from {tree}")
                files.append(pattern)
        return files

    def prepare(self, tree: Path) -> None:
        """Make the files a configured build would have and the Debian tree lacks: each
        ``copy`` whose destination is missing, then each ``write`` (``{DEB_HOST_MULTIARCH}``
        in its text is the build machine's multiarch triplet)."""
        for dst, src in self.copy:
            if not (tree / dst).exists():
                shutil.copyfile(tree / src, tree / dst)
        arch = ""
        for path, text in self.write:
            if "{DEB_HOST_MULTIARCH}" in text and not arch:
                arch = run([tool("dpkg-architecture", "dpkg-dev"), "-qDEB_HOST_MULTIARCH"])
                arch = arch.decode().strip()
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_text(text.replace("{DEB_HOST_MULTIARCH}", arch))


_SPLITS = {NAME: ("test",), TRAIN_NAME: ("train", "validation")}
_FIELDS = {f.name for f in fields(Program)}
_REQUIRED = ("name", "version", "program", "license", "dataset", "split", "sources")


def _relative(path: object, where: str) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"{where}: {path!r} is not a relative path inside the source tree")
    return path


def load_programs(path: Path | None = None) -> dict[str, Program]:
    """The recipes of :data:`DATA_FILE` (or ``path``), by name, in file order; a malformed
    entry raises ``ValueError`` naming it, the field and what is allowed."""
    path = DATA_FILE if path is None else path
    try:
        entries = json.loads(read_regular(path, "program list", MAX_MANIFEST_BYTES))["programs"]
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise ValueError(
            f"{path} is not a Debian program list (a JSON object with a "
            f"'programs' list): {type(e).__name__}"
        ) from None
    out: dict[str, Program] = {}
    for i, entry in enumerate(entries if isinstance(entries, list) else [None]):
        where = f"{path} entry {i}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not a JSON object")
        unknown = sorted(set(entry) - _FIELDS)
        missing = [k for k in _REQUIRED if k not in entry]
        if unknown or missing:
            raise ValueError(
                f"{where}: unknown fields {unknown}, missing fields {missing}; "
                f"allowed: {', '.join(sorted(_FIELDS))}"
            )
        for key in ("name", "version", "program", "license", "dataset", "split", "notes", "sha256"):
            if not isinstance(entry.get(key, ""), str):
                raise ValueError(f"{where}: {key} must be a string")
        name = entry["name"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", name) or name in out:
            raise ValueError(f"{where}: name {name!r} is not a new Debian source package name")
        if entry["split"] not in _SPLITS.get(entry["dataset"], ()):
            allowed = "; ".join(f"{d}: {', '.join(s)}" for d, s in _SPLITS.items())
            raise ValueError(
                f"{where}: dataset {entry['dataset']!r} with split "
                f"{entry['split']!r} is not allowed; allowed: {allowed}"
            )
        lists = {}
        for key in ("sources", "flags", "exclude"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{where}: {key} must be a list of strings")
            lists[key] = tuple(value)
        for p in lists["sources"] + lists["exclude"]:
            _relative(p, where)
        pairs = {}
        for key in ("copy", "write"):
            value = entry.get(key, {})
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError(f"{where}: {key} must map paths to strings")
            pairs[key] = tuple((_relative(k, where), v) for k, v in value.items())
        for _dst, src in pairs["copy"]:
            _relative(src, where)
        out[name] = Program(**{**entry, **lists, **pairs})
    return out


#: Every recipe, both datasets' (package names are unique across them).
PROGRAMS: dict[str, Program] = load_programs()


def names(dataset: str = NAME, split: str | None = None) -> list[str]:
    """The benchmark names of ``dataset`` (``split`` only, if given), in file order."""
    return [
        p.name
        for p in PROGRAMS.values()
        if p.dataset == dataset and (split is None or p.split == split)
    ]


NAMES = names(NAME)  # debian-v0: bzip2, zlib, lua5.4, libgsm, then the programs added later


def build_hint(dataset: str = NAME) -> str:
    return f"run `optgym datasets build {dataset}`"


def out_dir(dataset: str = NAME) -> Path:
    """Where ``dataset``'s bitcode and manifest go."""
    return cache_dir() / "datasets" / dataset


def bitcode_path(name: str) -> Path:
    return out_dir(PROGRAMS[name].dataset) / f"{name}.bc"


def manifest_path(dataset: str = NAME) -> Path:
    return out_dir(dataset) / "manifest.json"


def read_manifest(dataset: str = NAME) -> dict:
    """``dataset``'s manifest as written (its file read without following a link or
    blocking); ``{}`` when it is missing or unreadable."""
    try:
        manifest = json.loads(read_regular(manifest_path(dataset), "manifest", MAX_MANIFEST_BYTES))
    except (ValueError, RecursionError):  # missing, not a regular file, not JSON
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _recorded_sha256(name: str) -> str | None:
    try:
        entry = read_manifest(PROGRAMS[name].dataset)["programs"][name]
    except (KeyError, TypeError):
        return None
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    return sha if isinstance(sha, str) else None


def bitcode_problem(name: str) -> str | None:
    """What is wrong with the built bitcode of ``name`` (None: it is what the build made).

    The file must be a regular file (no link, FIFO or device: never read in a way that
    blocks), have the sha256 its manifest records and carry this installation's integrity
    tag for its own name (a tag copied with another program's bitcode does not fit); the
    message names the file and never quotes it.
    """
    return _inspect(name)[1]


def _inspect(name: str) -> tuple[bytes, str | None]:
    """The bytes of ``name``'s bitcode as read once, and what is wrong with them."""
    path = bitcode_path(name)
    if not os.path.lexists(path):
        return b"", f"{path} is missing"
    try:
        data = read_regular(path, "bitcode", MAX_BITCODE_BYTES)
    except ValueError as e:
        return b"", str(e)  # names the file and why (a FIFO, a link, too large)
    if hashlib.sha256(data).hexdigest() != _recorded_sha256(name):
        return data, (
            f"{path} does not have the sha256 that {manifest_path(PROGRAMS[name].dataset)} "
            "records for it (the file "
            "was changed or replaced, or the manifest was)"
        )
    if not os.path.lexists(tag_path(path)):
        return data, (
            f"{path} has no integrity tag ({tag_path(path).name}; built by an older OptGym)"
        )
    try:
        claimed = read_tag(path)
    except ValueError:
        claimed = ""
    if not cache_tag_matches(path, data, PURPOSE, claimed):
        return data, (
            f"{path} does not match its integrity tag (changed, or not built by this installation)"
        )
    return data, None


def _check_names(names: Iterable[str], dataset: str = NAME) -> list[str]:
    names = list(names)
    allowed = globals()["names"](dataset)
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"unknown package {name!r} in {dataset}; allowed: {', '.join(allowed)}"
            )
    return names


# --- fetching ------------------------------------------------------------------------------


class _Apt:
    """``apt-get`` with its own sources list, lists and cache under ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.apt = tool("apt-get", "apt")
        sources = root / "sources.list"
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        line = f"deb-src {MIRROR} {SUITE} main\n"
        try:
            same = read_regular(sources, "apt sources list", len(line)) == line.encode()
        except ValueError:  # missing, or not a regular file: written afresh
            same = False
        if not same:
            write_atomic(sources, line.encode())
        self.options = [
            "-o", f"Dir::Etc::SourceList={sources}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={root / 'lists'}",
            "-o", f"Dir::Cache={root / 'cache'}",
        ]  # fmt: skip

    def _run(self, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        return subprocess.run(
            [self.apt, *self.options, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def update(self) -> None:
        proc = self._run(["update"])
        if proc.returncode != 0:
            raise RuntimeError(
                f"apt-get update for deb-src {MIRROR} {SUITE} failed ({proc.returncode}):\n"
                + (proc.stdout + proc.stderr)[-2000:]
            )

    def source(self, package: str, version: str, workdir: Path) -> Path:
        """Download and unpack ``package=version`` into ``workdir``; the unpacked tree."""
        proc = self._run(["source", f"{package}={version}"], cwd=workdir)
        if proc.returncode != 0:
            raise RuntimeError(
                f"apt-get source {package}={version} failed ({proc.returncode}): Debian "
                f"{SUITE} may no longer serve this pinned version. apt printed:\n"
                + (proc.stdout + proc.stderr)[-2000:]
            )
        upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
        tree = workdir / f"{package}-{upstream}"
        dirs = [p for p in workdir.iterdir() if p.is_dir() and not p.is_symlink()]
        if not tree.is_dir() and len(dirs) == 1:
            tree = dirs[0]  # a tree named otherwise (a native package's own name, say)
        if not tree.is_dir():
            found = ", ".join(sorted(p.name for p in workdir.iterdir())) or "nothing"
            raise RuntimeError(f"apt-get source {package}={version} made no {tree.name}: {found}")
        return tree


# --- building ------------------------------------------------------------------------------


def _compile(program: Program, tree: Path, clang: str, link: str) -> tuple[bytes, list[str]]:
    """Compile and link ``program`` in ``tree``; its bitcode and the C files it is made of."""
    program.prepare(tree)
    files = program.source_files(tree)
    objdir = "optgym-bc"
    (tree / objdir).mkdir()
    objects = [f"{objdir}/{i:03d}.bc" for i in range(len(files))]

    def one(pair: tuple[str, str]) -> bytes:
        src, obj = pair
        return run([clang, *CLANG_FLAGS, *program.flags, src, "-o", obj], cwd=tree)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(one, zip(files, objects, strict=True)))
    out = f"{objdir}/{program.name}.bc"
    run([link, *objects, "-o", out], cwd=tree)
    return (tree / out).read_bytes(), files


def _verify(path: Path) -> None:
    run([tool("opt-19", "llvm-19"), "-passes=verify", "-disable-output", str(path)])


def instruction_count(path: Path) -> int:
    """The sum of opt-19's per-function ``TotalInstructionCount`` over the module."""
    proc = subprocess.run(
        [tool("opt-19", "llvm-19"), "-passes=print<func-properties>", "-disable-output", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"opt-19 print<func-properties> failed on {path}:\n{proc.stderr}")
    total = 0
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("TotalInstructionCount:"):
            total += int(line.split(":", 1)[1])
    return total


def _update_manifest(dataset: str, entries: dict[str, dict]) -> None:
    manifest = read_manifest(dataset)
    if not isinstance(manifest.get("programs"), dict):
        manifest.pop("programs", None)
    manifest.setdefault("dataset", f"benchmark://{dataset}")
    manifest.setdefault("programs", {})
    manifest["programs"].update(entries)
    order = names(dataset)
    manifest["programs"] = {n: manifest["programs"][n] for n in order if n in manifest["programs"]}
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    write_atomic(manifest_path(dataset), text.encode())


def build(
    packages: list[str] | None = None, progress: bool = True, dataset: str = NAME
) -> list[Path]:
    """Build the bitcode of ``dataset``'s ``packages`` (default: all of them) into the cache;
    their paths.

    A package whose bitcode is already in the cache is left alone. A package that fails does
    not stop the others: the build goes on and raises ``RuntimeError`` naming every failure
    at the end. Needs apt-get, dpkg-source (Debian's dpkg-dev), clang-19, llvm-link-19 and
    opt-19, and network access to deb.debian.org.
    """
    names = _check_names(globals()["names"](dataset) if packages is None else packages, dataset)
    todo = [n for n in names if bitcode_problem(n) is not None and not _reseal(n)]
    failed: list[str] = []
    if todo:
        tool("dpkg-source", "dpkg-dev")
        tool("dpkg-architecture", "dpkg-dev")
        clang = tool("clang-19", "clang-19")
        link = tool("llvm-link-19", "llvm-19")
        tool("opt-19", "llvm-19")
        src_root = cache_dir() / "debian-src"
        apt = _Apt(src_root / "apt")
        apt.update()
        clang_version = run([clang, "--version"]).decode().splitlines()[0]
        triple = run([clang, "-print-target-triple"]).decode().strip()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(todo, desc=f"building {dataset}", unit="program")
        for name in bar if bar is not None else todo:
            if bar is not None:
                bar.set_postfix_str(name)
            program = PROGRAMS[name]
            try:
                with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=src_root) as tmp:
                    tree = apt.source(name, program.version, Path(tmp))
                    data, files = _compile(program, tree, clang, link)
                    staged = Path(tmp) / f"{name}.bc"
                    staged.write_bytes(data)
                    _verify(staged)
                    count = instruction_count(staged)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                failed.append(f"{name}: {e}")
                continue
            _store(
                name,
                data,
                {
                    "uri": f"benchmark://{dataset}/{name}",
                    "source_package": name,
                    "version": program.version,
                    "suite": f"{SUITE} ({MIRROR})",
                    "program": program.program,
                    "license": program.license,
                    "split": program.split,
                    "sources": files,
                    "flags": [*CLANG_FLAGS, *program.flags],
                    "notes": program.notes,
                    "compiler": clang_version,
                    "target": triple,
                    "instruction_count": count,
                },
            )
        if bar is not None:
            bar.close()
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(names)} {dataset} programs failed to build:\n"
            + "\n".join(failed)
        )
    return [bitcode_path(n) for n in names]


def build_train(packages: list[str] | None = None, progress: bool = True) -> list[Path]:
    """:func:`build` for ``debian-train-v0``."""
    return build(packages, progress, TRAIN_NAME)


def _store(name: str, data: bytes, entry: dict) -> None:
    """Put built bitcode in the cache with its tag, and its manifest entry with its sha256.

    Refuses (``RuntimeError``) bitcode whose sha256 another dataset's built program has: the
    train and test sets never share a program. Bitcode that differs from what the recipe gave
    when the data file was made (another clang-19 build, say) is stored with a warning.
    """
    program = PROGRAMS[name]
    sha = hashlib.sha256(data).hexdigest()
    for other in _SPLITS:
        if other == program.dataset:
            continue
        for n, e in (read_manifest(other).get("programs") or {}).items():
            if isinstance(e, dict) and e.get("sha256") == sha:
                raise RuntimeError(
                    f"{name} built to the same bitcode as benchmark://{other}/{n}: "
                    f"{program.dataset} and {other} must not share a program"
                )
    if program.sha256 and program.sha256 != sha:
        warnings.warn(
            f"{name}: the bitcode built here (sha256 {sha[:12]}) differs from the one its "
            f"recipe gave when {DATA_FILE.name} was made ({program.sha256[:12]}); results on "
            "it may differ from the published ones",
            stacklevel=2,
        )
    write_tagged(bitcode_path(name), data, PURPOSE)
    _update_manifest(program.dataset, {name: {**entry, "sha256": sha}})


def _reseal(name: str) -> bool:
    """Tag bitcode built by an older OptGym (no tag yet) whose bytes still have the sha256
    its manifest records and pass opt-19's verifier; False when it must be rebuilt."""
    path = bitcode_path(name)
    if os.path.lexists(tag_path(path)):
        return False  # a tag that does not match means a changed file: rebuild it
    try:
        data = read_regular(path, "bitcode", MAX_BITCODE_BYTES)
    except ValueError:  # missing, or a link, FIFO or folder in its place: rebuild it
        return False
    if hashlib.sha256(data).hexdigest() != _recorded_sha256(name):
        return False
    try:
        _verify(path)
    except RuntimeError:
        return False
    write_atomic(tag_path(path), cache_tag(path, data, PURPOSE).encode())  # bitcode as it is
    return bitcode_problem(name) is None


def _provenance(dataset: str) -> str:
    lines = [
        f"Recipes: {DATA_FILE.name} (package, pinned version, license, files, flags). "
        f"Sources: `apt-get source <package>=<version>` from `deb-src {MIRROR} {SUITE} main`, "
        "with a private apt configuration under the cache; unpacked and patched by dpkg-source.",
        "Each C file: clang-19 " + " ".join(CLANG_FLAGS) + " <flags> <file>, run from the "
        "unpacked tree with relative paths; then llvm-link-19 in the order listed; checked with "
        "opt-19 -passes=verify.",
    ]
    for p in PROGRAMS.values():
        if p.dataset != dataset:
            continue
        srcs = ", ".join(p.sources)
        if p.exclude:
            srcs += " except " + ", ".join(p.exclude)
        line = f"{p.name} {p.version} ({p.split}) -> {p.program}: {srcs}"
        if p.flags:
            line += f"; flags: {' '.join(p.flags)}"
        if p.copy or p.write:
            line += "; made before compiling: " + ", ".join(d for d, _ in p.copy + p.write)
        if p.notes:
            line += f"; {p.notes}"
        lines.append(line + ".")
    return "\n".join(lines)


def _references(dataset: str) -> tuple[str, ...]:
    return (
        *(
            f"https://sources.debian.org/src/{p.name}/{p.version}/"
            for p in PROGRAMS.values()
            if p.dataset == dataset
        ),
        "Cummins et al., CompilerGym: Robust, Performant Compiler Optimization "
        "Environments for AI Research, CGO 2022 (the flags)",
    )


class DebianDataset(Dataset):
    """Real C programs from Debian bookworm, one bitcode module each; all in ``test``
    (``train`` and ``validation`` are empty). No package of it is in ``debian-train-v0``."""

    build = staticmethod(build)

    name = NAME
    description = (
        f"{len(NAMES)} real C programs (bzip2, zlib's minigzip, the lua 5.4 interpreter, "
        "libgsm's toast, ...) built from pinned Debian bookworm source packages into one "
        "unoptimized LLVM bitcode module per program. Test split only."
    )
    license = "; ".join(f"{p.name}: {p.license}" for p in PROGRAMS.values() if p.dataset == NAME)
    provenance = _provenance(NAME)
    references = _references(NAME)

    def benchmark_names(self, split: str | None = None) -> list[str]:
        return names(self.name, split)

    def benchmark(self, uri: str) -> Benchmark:
        name = self.check_uri(uri).path
        _check_names([name], self.name)
        path = bitcode_path(name)
        hint = build_hint(self.name)
        if not path.exists():
            raise FileNotFoundError(f"{uri} is not built yet ({path} is missing): {hint}")
        data, problem = _inspect(name)
        if problem is not None:
            raise ValueError(f"refusing {uri}: {problem}; {hint} to rebuild it")
        # The hash of the bytes checked: a file swapped after this check fails read_bytes().
        return Benchmark(uri, path, hashlib.sha256(data).hexdigest())


class DebianTrainDataset(DebianDataset):
    """Real C programs from Debian bookworm to train on: ``train`` and ``validation``
    splits (``test`` is empty), no package or bitcode shared with ``debian-v0``."""

    build = staticmethod(build_train)

    name = TRAIN_NAME
    description = (
        f"{len(names(TRAIN_NAME))} real C programs and libraries (compressors, parsers, "
        "interpreters, crypto and numeric libraries) from pinned Debian bookworm source "
        "packages, one unoptimized LLVM bitcode module each, built as debian-v0 is. Train "
        "and validation splits only; no package of debian-v0."
    )
    license = "; ".join(
        f"{p.name}: {p.license}" for p in PROGRAMS.values() if p.dataset == TRAIN_NAME
    )
    provenance = _provenance(TRAIN_NAME)
    references = _references(TRAIN_NAME)
