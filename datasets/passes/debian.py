"""``benchmark://debian-v0/<package>``: real C programs from Debian source packages.

Each benchmark is one whole program (every translation unit it is made of, linked with
llvm-link-19 into a single bitcode module) from a pinned Debian bookworm source package:

========  =====================  =========================================
name      source package         program
========  =====================  =========================================
bzip2     bzip2 1.0.8-5          the ``bzip2`` command
zlib      zlib 1:1.2.13.dfsg-1   ``minigzip`` (zlib's gzip-like test tool)
lua5.4    lua5.4 5.4.4-3+deb12u1 the ``lua`` interpreter
libgsm    libgsm 1.0.22-1        ``toast`` (GSM 06.10 speech codec tool)
========  =====================  =========================================

Splits: all four programs are in ``test``; ``train`` and ``validation`` are empty. The set is
small and meant for evaluation only, never for training.

Nothing is shipped: :func:`build` (also ``optgym datasets build debian-v0``) fetches the sources
with ``apt-get source`` through a private apt configuration under the cache (``/etc`` is never
touched), compiles each C file with clang-19 and :data:`CLANG_FLAGS`, links, verifies with
opt-19 and stores ``<cache>/datasets/debian-v0/<name>.bc`` with an integrity tag beside it
(``<name>.bc.tag``) plus a ``manifest.json`` recording each file's sha256. Files are
compiled by relative path from inside the unpacked tree, so the bytes do not depend on where
the build ran: building twice gives identical bitcode.

Before use, each file is checked against both its manifest sha256 and its tag: a changed or
replaced ``.bc`` is refused with an error naming it, and ``build`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from optgym.datasets.cache import cache_dir, write_atomic
from optgym.datasets.dataset import Benchmark, Dataset
from optgym.datasets.files import read_regular
from optgym.datasets.passes.tools import CLANG_FLAGS, run, tool
from optgym.integrity import cache_tag, cache_tag_matches, read_tag, tag_path, write_tagged

NAME = "debian-v0"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BUILD_HINT = "run `optgym datasets build debian-v0`"
PURPOSE = "debian-bitcode"  # the integrity-tag purpose of the built bitcode
MAX_MANIFEST_BYTES = 1 << 20
MAX_BITCODE_BYTES = 1 << 30


@dataclass(frozen=True)
class Program:
    """How one benchmark is made from its Debian source package."""

    name: str  # the benchmark's name (the URI's last part) and the source package
    version: str  # the pinned Debian version, epoch included
    program: str  # the program the bitcode is
    license: str
    sources: tuple[str, ...]  # paths or globs relative to the unpacked tree, in link order
    flags: tuple[str, ...]  # preprocessor and dialect flags added after CLANG_FLAGS
    exclude: tuple[str, ...] = ()  # files a glob in ``sources`` picks up but must leave out
    notes: str = ""  # anything else done to the tree before compiling

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


_GSM_LIBRARY = (
    "add code debug decode long_term lpc preprocess rpe gsm_destroy gsm_decode gsm_encode "
    "gsm_explode gsm_implode gsm_create gsm_print gsm_option short_term table"
).split()
_GSM_TOAST = "toast toast_lin toast_ulaw toast_alaw toast_audio".split()

PROGRAMS: dict[str, Program] = {
    p.name: p
    for p in (
        Program(
            name="bzip2",
            version="1.0.8-5",
            program="bzip2",
            license="bzip2-1.0.6 (BSD-like; see the package's LICENSE)",
            sources=(
                "bzip2.c",
                "blocksort.c",
                "huffman.c",
                "crctable.c",
                "randtable.c",
                "compress.c",
                "decompress.c",
                "bzlib.c",
            ),
            # Debian's debian/rules: CPPFLAGS += -D_REENTRANT -D_FILE_OFFSET_BITS=64.
            flags=("-D_REENTRANT", "-D_FILE_OFFSET_BITS=64"),
        ),
        Program(
            name="zlib",
            version="1:1.2.13.dfsg-1",
            program="minigzip",
            license="Zlib",
            sources=(
                *(
                    f"{m}.c"
                    for m in (
                        "adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback "
                        "inffast inflate inftrees trees uncompr zutil"
                    ).split()
                ),
                "test/minigzip.c",
            ),
            # Debian's rules on amd64 (-D_REENTRANT -DUNALIGNED_OK) plus what zlib's configure
            # finds on Linux: its CFLAGS and the two zconf.h switches it turns on.
            flags=(
                "-I.",
                "-D_REENTRANT",
                "-DUNALIGNED_OK",
                "-D_LARGEFILE64_SOURCE=1",
                "-DHAVE_HIDDEN",
                "-DHAVE_UNISTD_H",
                "-DHAVE_STDARG_H",
            ),
            notes="zconf.h is zconf.h.in copied when the tree has no zconf.h",
        ),
        Program(
            name="lua5.4",
            version="5.4.4-3+deb12u1",
            program="lua",
            license="MIT",
            sources=("src/*.c",),
            exclude=("src/luac.c", "src/onelua.c"),
            # src/Makefile's `linux` target (without readline) and Debian's CC='gcc -std=gnu99'.
            flags=("-std=gnu99", "-DLUA_COMPAT_5_3", "-DLUA_USE_LINUX"),
            notes=(
                "src/lua5.4-deb-multiarch.h is written as debian/rules writes it, with "
                "DEB_HOST_MULTIARCH from dpkg-architecture"
            ),
        ),
        Program(
            name="libgsm",
            version="1.0.22-1",
            program="toast",
            license="TU Berlin permissive license (ISC-like; see the package's COPYRIGHT)",
            sources=tuple(f"src/{m}.c" for m in _GSM_LIBRARY + _GSM_TOAST),
            # The Makefile's CC, SASR, WAV49 and -I$(INC) with Debian's CCFLAGS and its
            # non-ARM MULHACK; inc/config.h supplies the HAS_* switches.
            flags=(
                "-ansi",
                "-Iinc",
                "-D_GNU_SOURCE",
                "-D_REENTRANT",
                "-DNeedFunctionPrototypes=1",
                "-DSASR",
                "-DUSE_FLOAT_MUL",
                "-DWAV49",
            ),
        ),
    )
}
NAMES = list(PROGRAMS)  # the fixed order: bzip2, zlib, lua5.4, libgsm


def out_dir() -> Path:
    """Where the bitcode and the manifest go."""
    return cache_dir() / "datasets" / NAME


def bitcode_path(name: str) -> Path:
    return out_dir() / f"{name}.bc"


def manifest_path() -> Path:
    return out_dir() / "manifest.json"


def _read_manifest() -> dict:
    """The manifest as written (its file read without following a link or blocking); ``{}``
    when it is missing or unreadable."""
    try:
        manifest = json.loads(read_regular(manifest_path(), "manifest", MAX_MANIFEST_BYTES))
    except (ValueError, RecursionError):  # missing, not a regular file, not JSON
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _recorded_sha256(name: str) -> str | None:
    try:
        entry = _read_manifest()["programs"][name]
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
            f"{path} does not have the sha256 that {manifest_path()} records for it (the file "
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


def _check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    for name in names:
        if name not in PROGRAMS:
            raise ValueError(f"unknown package {name!r} in {NAME}; allowed: {', '.join(NAMES)}")
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
        if not tree.is_dir():
            found = ", ".join(sorted(p.name for p in workdir.iterdir())) or "nothing"
            raise RuntimeError(f"apt-get source {package}={version} made no {tree.name}: {found}")
        return tree


# --- building ------------------------------------------------------------------------------


def _prepare(program: Program, tree: Path) -> None:
    """Make the files a configured build would have and the Debian tree lacks."""
    if program.name == "zlib" and not (tree / "zconf.h").exists():
        shutil.copyfile(tree / "zconf.h.in", tree / "zconf.h")
    if program.name == "lua5.4":
        header = tree / "src" / "lua5.4-deb-multiarch.h"
        if "lua5.4-deb-multiarch.h" in (tree / "src" / "luaconf.h").read_text() and not (
            header.exists()
        ):
            arch = run([tool("dpkg-architecture", "dpkg-dev"), "-qDEB_HOST_MULTIARCH"])
            header.write_text(
                "#ifndef _LUA_DEB_MULTIARCH_\n#define _LUA_DEB_MULTIARCH_\n"
                f'#define DEB_HOST_MULTIARCH "{arch.decode().strip()}"\n#endif\n'
            )


def _compile(program: Program, tree: Path, clang: str, link: str) -> tuple[bytes, list[str]]:
    """Compile and link ``program`` in ``tree``; its bitcode and the C files it is made of."""
    _prepare(program, tree)
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


def _update_manifest(entries: dict[str, dict]) -> None:
    path = out_dir() / "manifest.json"
    manifest = _read_manifest()
    if not isinstance(manifest.get("programs"), dict):
        manifest.pop("programs", None)
    manifest.setdefault("dataset", f"benchmark://{NAME}")
    manifest.setdefault("programs", {})
    manifest["programs"].update(entries)
    manifest["programs"] = {n: manifest["programs"][n] for n in NAMES if n in manifest["programs"]}
    write_atomic(path, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())


def build(packages: list[str] | None = None, progress: bool = True) -> list[Path]:
    """Build the bitcode of ``packages`` (default: all four) into the cache; their paths.

    A package whose bitcode is already in the cache is left alone. Needs apt-get, dpkg-source
    (Debian's dpkg-dev), clang-19, llvm-link-19 and opt-19, and network access to
    deb.debian.org. Raises ``RuntimeError`` if a pinned version is no longer served.
    """
    names = _check_names(NAMES if packages is None else packages)
    todo = [n for n in names if bitcode_problem(n) is not None and not _reseal(n)]
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

            bar = tqdm(todo, desc=f"building {NAME}", unit="program")
        for name in bar if bar is not None else todo:
            if bar is not None:
                bar.set_postfix_str(name)
            program = PROGRAMS[name]
            with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=src_root) as tmp:
                tree = apt.source(name, program.version, Path(tmp))
                data, files = _compile(program, tree, clang, link)
                staged = Path(tmp) / f"{name}.bc"
                staged.write_bytes(data)
                _verify(staged)
                count = instruction_count(staged)
            _store(
                name,
                data,
                {
                    "uri": f"benchmark://{NAME}/{name}",
                    "source_package": name,
                    "version": program.version,
                    "suite": f"{SUITE} ({MIRROR})",
                    "program": program.program,
                    "license": program.license,
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
    return [bitcode_path(n) for n in names]


def _store(name: str, data: bytes, entry: dict) -> None:
    """Put built bitcode in the cache with its tag, and its manifest entry with its sha256."""
    write_tagged(bitcode_path(name), data, PURPOSE)
    _update_manifest({name: {**entry, "sha256": hashlib.sha256(data).hexdigest()}})


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


def _provenance() -> str:
    lines = [
        f"Sources: `apt-get source <package>=<version>` from `deb-src {MIRROR} {SUITE} main`, "
        "with a private apt configuration under the cache; unpacked and patched by dpkg-source.",
        "Each C file: clang-19 " + " ".join(CLANG_FLAGS) + " <flags> <file>, run from the "
        "unpacked tree with relative paths; then llvm-link-19 in the order listed; checked with "
        "opt-19 -passes=verify.",
    ]
    for p in PROGRAMS.values():
        srcs = ", ".join(p.sources)
        if p.exclude:
            srcs += " except " + ", ".join(p.exclude)
        line = f"{p.name} {p.version} -> {p.program}: {srcs}; flags: {' '.join(p.flags)}"
        if p.notes:
            line += f"; {p.notes}"
        lines.append(line + ".")
    return "\n".join(lines)


class DebianDataset(Dataset):
    """Four real C programs from Debian bookworm, one bitcode module each; all in ``test``
    (``train`` and ``validation`` are empty)."""

    build = staticmethod(build)

    name = NAME
    description = (
        "Real C programs (bzip2, zlib's minigzip, the lua 5.4 interpreter, libgsm's "
        "toast) built from pinned Debian bookworm source packages into one "
        "unoptimized LLVM bitcode module per program. Test split only."
    )
    license = "; ".join(f"{p.name}: {p.license}" for p in PROGRAMS.values())
    provenance = _provenance()
    references = (
        "https://sources.debian.org/src/bzip2/1.0.8-5/",
        "https://sources.debian.org/src/zlib/1:1.2.13.dfsg-1/",
        "https://sources.debian.org/src/lua5.4/5.4.4-3+deb12u1/",
        "https://sources.debian.org/src/libgsm/1.0.22-1/",
        "Cummins et al., CompilerGym: Robust, Performant Compiler Optimization "
        "Environments for AI Research, CGO 2022 (the flags)",
    )

    def benchmark_names(self, split: str | None = None) -> list[str]:
        return list(NAMES) if split in (None, "test") else []

    def benchmark(self, uri: str) -> Benchmark:
        name = self.check_uri(uri).path
        _check_names([name])
        path = bitcode_path(name)
        if not path.exists():
            raise FileNotFoundError(f"{uri} is not built yet ({path} is missing): {BUILD_HINT}")
        data, problem = _inspect(name)
        if problem is not None:
            raise ValueError(f"refusing {uri}: {problem}; {BUILD_HINT} to rebuild it")
        # The hash of the bytes checked: a file swapped after this check fails read_bytes().
        return Benchmark(uri, path, hashlib.sha256(data).hexdigest())
