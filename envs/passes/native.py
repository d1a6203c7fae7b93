"""Build and load OptGym's small C bridge to Debian's libLLVM-19.

The bridge (``native/optgym_llvm.c``) is compiled once per source version into
``<cache>/native`` (owned by this user, mode 700) with clang-19 (or ``cc``), with an integrity
tag beside it, and loaded with ctypes. A library there is trusted only if its bytes match the
tag written when this package built it there (the tag binds the library's path in the
cache, so a tag copied from another file does not fit): a planted, changed or copied one,
or a FIFO, link or folder in its place, is rebuilt, never loaded or waited on, and the
checked bytes are loaded from a private in-memory copy, so they cannot be swapped between
check and load. Only the worker process loads it: a crash inside LLVM then ends the
worker, never the user's process.
"""

from __future__ import annotations

import ctypes
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
SOURCE = Path(__file__).parent / "native" / "optgym_llvm.c"

INSTCOUNT_DIM = 70
AUTOPHASE_DIM = 56


class LlvmNotFoundError(RuntimeError):
    """libLLVM-19, its C headers, or a C compiler is missing."""


def _check_prerequisites() -> None:
    if not LIBLLVM.exists():
        raise LlvmNotFoundError(
            f"OptGym's pass-ordering env needs LLVM 19's shared library, looked for {LIBLLVM} "
            f"(set OPTGYM_LLVM_PREFIX to use another prefix). Install it with: {INSTALL_HINT}"
        )
    header = LLVM_PREFIX / "include" / "llvm-c" / "Core.h"
    if not header.exists():
        raise LlvmNotFoundError(
            f"LLVM 19's C headers are missing, looked for {header}. Install them with: "
            f"{INSTALL_HINT}"
        )


def _compiler() -> str:
    for name in ("clang-19", "cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    raise LlvmNotFoundError(f"no C compiler found (looked for clang-19, cc, gcc). {INSTALL_HINT}")


PURPOSE = "native-bridge"  # the integrity-tag purpose of the compiled bridge


def private_dir() -> Path:
    """``<cache>/native``: the bridge's folder, owned by this user and closed to others."""
    path = cache_dir() / "native"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as e:
        raise LlvmNotFoundError(
            f"cannot make {path} for OptGym's LLVM bridge: {e.strerror}"
        ) from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise LlvmNotFoundError(
            f"{path} must be a folder (not a link) owned by this user (uid {os.geteuid()}) to "
            "hold OptGym's LLVM bridge; remove it and it is made again"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)  # made by an older OptGym with the default umask
    return path


def _target() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes() + str(LLVM_PREFIX).encode()).hexdigest()[:16]
    return private_dir() / f"libogllvm-{digest}.so"


def library_bytes() -> bytes:
    """The bridge's bytes for the current source, if its integrity tag shows this package
    built them; a library that was planted, changed or left without a tag is rebuilt, never
    used."""
    _check_prerequisites()
    target = _target()
    data = read_tagged(target, PURPOSE)
    return data if data is not None else _build(target)


def library_path() -> Path:
    """Path of the compiled bridge, built (or rebuilt) until its bytes are ours. Load it only
    through :func:`load`, which loads the checked bytes themselves."""
    library_bytes()
    return _target()


def _build(target: Path) -> bytes:
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [
        _compiler(), "-O2", "-shared", "-fPIC", str(SOURCE), "-o", tmp,
        f"-I{LLVM_PREFIX / 'include'}", f"-L{LLVM_PREFIX / 'lib'}", "-lLLVM-19",
        f"-Wl,-rpath,{LLVM_PREFIX / 'lib'}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LlvmNotFoundError(
                f"building OptGym's LLVM bridge failed ({' '.join(cmd)}):\n{proc.stderr}\n"
                f"Make sure these are installed: {INSTALL_HINT}"
            )
        data = read_regular(tmp, "built LLVM bridge")  # the compiler's output, never a link
    finally:
        os.unlink(tmp)
    write_tagged(target, data, PURPOSE)  # atomic: concurrent workers may build at once
    return data


def _load_private_copy(data: bytes) -> ctypes.CDLL:
    """Load ``data`` from a copy no one else can change: an in-memory file sealed against
    writes where Linux has them, else a file in a fresh owner-only folder. The bytes loaded
    are then the very bytes checked, with no window to swap the file in between."""
    try:
        fd = os.memfd_create("optgym-llvm-bridge", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        try:
            os.write(fd, data)
            seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            return ctypes.CDLL(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # no /proc, or in-memory files may not be mapped executable here
        finally:
            os.close(fd)  # the mapping outlives the file
    folder = tempfile.mkdtemp(prefix="optgym-llvm-bridge-")  # mode 700, ours
    try:
        path = os.path.join(folder, "libogllvm.so")
        with open(path, "xb") as f:
            f.write(data)
        return ctypes.CDLL(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_LIB: ctypes.CDLL | None = None


def load() -> ctypes.CDLL:
    """Load the bridge with its function signatures declared."""
    global _LIB
    if _LIB is not None:
        return _LIB
    lib = _load_private_copy(library_bytes())
    p, i64, c = ctypes.c_void_p, ctypes.c_int64, ctypes.c_char_p
    i64p = ctypes.POINTER(ctypes.c_int64)
    sigs = {
        "og_init": ([], ctypes.c_int),
        "og_error": ([], c),
        "og_llvm_version": ([ctypes.POINTER(ctypes.c_uint)] * 3, None),
        "og_load": ([c, ctypes.c_size_t, ctypes.c_int], p),
        "og_free": ([p], None),
        "og_run": ([p, c], ctypes.c_int),
        "og_inst_count": ([p], i64),
        "og_features": ([p, i64p, i64p], None),
        "og_text_size": ([p], i64),
        "og_print": ([p], p),
        "og_dispose_message": ([p], None),
        "og_bitcode": ([p], p),
        "og_buffer_start": ([p], p),
        "og_buffer_size": ([p], ctypes.c_size_t),
        "og_buffer_free": ([p], None),
        "og_graph_build": ([p], p),
        "og_graph_num_nodes": ([p], i64),
        "og_graph_num_edges": ([p], i64),
        "og_graph_nodes": ([p], i64p),
        "og_graph_edges": ([p], i64p),
        "og_graph_free": ([p], None),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    lib.og_init()
    _LIB = lib
    return lib


def llvm_version() -> str:
    lib = load()
    parts = [ctypes.c_uint() for _ in range(3)]
    lib.og_llvm_version(*[ctypes.byref(x) for x in parts])
    return ".".join(str(x.value) for x in parts)
