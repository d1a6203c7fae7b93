"""Build and start OptGym's LLVM worker, a small C++ program linked to Debian's libLLVM-19.

The worker (``native/optgym_llvm.cpp``) is compiled once per source version into
``<cache>/native`` (owned by this user, mode 700) with clang++-19 (or ``c++``/``g++``),
with an integrity tag beside it. An executable there is trusted only if its bytes match the
tag written when this package built it there (the tag binds the file's path in the cache,
so a tag copied from another file does not fit): a planted, changed or copied one, or a
FIFO, link or folder in its place, is rebuilt, never run or waited on. The checked bytes
are started from a private in-memory copy sealed against writes, so they cannot be swapped
between check and start. A crash inside LLVM then ends the worker, never the user's
process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from optgym.datasets.cache import cache_dir
from optgym.datasets.files import read_regular
from optgym.integrity import read_tagged, write_tagged

LLVM_PREFIX = Path(os.environ.get("OPTGYM_LLVM_PREFIX", "/usr/lib/llvm-19"))
LIBLLVM = LLVM_PREFIX / "lib" / "libLLVM-19.so"
INSTALL_HINT = "sudo apt-get install llvm-19 llvm-19-dev clang-19"
SOURCE = Path(__file__).parent / "native" / "optgym_llvm.cpp"
#: The worker's name in process listings (its argv[0]).
PROGRAM_NAME = "optgym-llvm-worker"

INSTCOUNT_DIM = 70
AUTOPHASE_DIM = 56

# LLVM's own compile flags for code that includes its C++ headers (llvm-config --cxxflags).
CXXFLAGS = [
    "-O2", "-std=c++17", "-fno-exceptions", "-funwind-tables", "-D_GNU_SOURCE",
    "-D__STDC_CONSTANT_MACROS", "-D__STDC_FORMAT_MACROS", "-D__STDC_LIMIT_MACROS",
]  # fmt: skip


class LlvmNotFoundError(RuntimeError):
    """libLLVM-19, its headers, or a C++ compiler is missing."""


def _check_prerequisites() -> None:
    if not LIBLLVM.exists():
        raise LlvmNotFoundError(
            f"OptGym's pass-ordering env needs LLVM 19's shared library, looked for {LIBLLVM} "
            f"(set OPTGYM_LLVM_PREFIX to use another prefix). Install it with: {INSTALL_HINT}"
        )
    header = LLVM_PREFIX / "include" / "llvm" / "Passes" / "PassBuilder.h"
    if not header.exists():
        raise LlvmNotFoundError(
            f"LLVM 19's C++ headers are missing, looked for {header}. Install them with: "
            f"{INSTALL_HINT}"
        )


def _compiler() -> str:
    for name in ("clang++-19", "c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    raise LlvmNotFoundError(
        f"no C++ compiler found (looked for clang++-19, c++, g++). {INSTALL_HINT}"
    )


PURPOSE = "native-bridge"  # the integrity-tag purpose of the compiled worker


def private_dir() -> Path:
    """``<cache>/native``: the worker's folder, owned by this user and closed to others."""
    path = cache_dir() / "native"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as e:
        raise LlvmNotFoundError(
            f"cannot make {path} for OptGym's LLVM worker: {e.strerror}"
        ) from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise LlvmNotFoundError(
            f"{path} must be a folder (not a link) owned by this user (uid {os.geteuid()}) to "
            "hold OptGym's LLVM worker; remove it and it is made again"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)  # made by an older OptGym with the default umask
    return path


def _target() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes() + str(LLVM_PREFIX).encode()).hexdigest()[:16]
    return private_dir() / f"{PROGRAM_NAME}-{digest}"


def worker_bytes() -> bytes:
    """The worker's bytes for the current source, if its integrity tag shows this package
    built them; an executable that was planted, changed or left without a tag is rebuilt,
    never used."""
    _check_prerequisites()
    target = _target()
    data = read_tagged(target, PURPOSE)
    return data if data is not None else _build(target)


def worker_path() -> Path:
    """Path of the compiled worker, built (or rebuilt) until its bytes are ours. Start it
    only through :func:`spawn`, which runs the checked bytes themselves."""
    worker_bytes()
    return _target()


def _build(target: Path) -> bytes:
    fd, tmp = tempfile.mkstemp(dir=target.parent)
    os.close(fd)
    cmd = [
        _compiler(), *CXXFLAGS, f"-I{LLVM_PREFIX / 'include'}", str(SOURCE), "-o", tmp,
        f"-L{LLVM_PREFIX / 'lib'}", "-lLLVM-19", f"-Wl,-rpath,{LLVM_PREFIX / 'lib'}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LlvmNotFoundError(
                f"building OptGym's LLVM worker failed ({' '.join(cmd)}):\n{proc.stderr}\n"
                f"Make sure these are installed: {INSTALL_HINT}"
            )
        data = read_regular(tmp, "built LLVM worker")  # the compiler's output, never a link
    finally:
        os.unlink(tmp)
    write_tagged(target, data, PURPOSE)  # atomic: concurrent envs may build at once
    return data


_SEALED: tuple[bytes, int] | None = None  # the checked bytes and their sealed copy


def _sealed_copy(data: bytes) -> int | None:
    """A file descriptor of an in-memory copy of ``data`` sealed against writes (None where
    Linux has no sealed in-memory files); kept for the life of this process."""
    global _SEALED
    if _SEALED is not None and _SEALED[0] == data:
        return _SEALED[1]
    try:
        fd = os.memfd_create(PROGRAM_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except (AttributeError, OSError):
        return None
    try:
        os.write(fd, data)
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except OSError:
        os.close(fd)
        return None
    if _SEALED is not None:
        os.close(_SEALED[1])
    _SEALED = (data, fd)
    return fd


def spawn(args: list[str], pass_fds: tuple[int, ...], **popen: object) -> subprocess.Popen:
    """Start the worker with ``args`` from the checked bytes: from a sealed in-memory copy,
    or, where in-memory files may not be executed, from a copy in a fresh owner-only folder
    that is removed once the worker runs. ``popen``: further ``subprocess.Popen``
    arguments."""
    data = worker_bytes()
    fd = _sealed_copy(data)
    if fd is not None:
        # Where in-memory files may not be executed (vm.memfd_noexec), the copy below runs.
        with contextlib.suppress(OSError):
            return subprocess.Popen(
                [PROGRAM_NAME, *args], executable=f"/proc/self/fd/{fd}",
                pass_fds=(*pass_fds, fd), **popen,
            )  # fmt: skip
    folder = tempfile.mkdtemp(prefix="optgym-llvm-worker-")  # mode 700, ours
    try:
        path = os.path.join(folder, PROGRAM_NAME)
        with open(path, "xb") as f:
            f.write(data)
        os.chmod(path, 0o700)
        return subprocess.Popen([PROGRAM_NAME, *args], executable=path, pass_fds=pass_fds, **popen)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def profile(program: Path, pipelines: list[str], repeats: int) -> dict[str, float]:
    """Run ``pipelines`` in order on ``program`` ``repeats`` times inside one worker process,
    with no channel and no observation sent anywhere: the seconds per episode (the best of
    the repeats) of each part of a step (``setup``: drop the analyses and parse the
    pipeline; ``passes``; ``inst_count``; ``features``: InstCount and Autophase) and of the
    ``floor`` (setup and passes only)."""
    import json

    proc = spawn(
        ["--profile", str(program), str(repeats)], (), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = proc.communicate("".join(p + "\n" for p in pipelines).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"profiling failed: {err.decode(errors='replace').strip()}")
    return json.loads(out)
