"""Build and load OptGym's small C bridge to Debian's libLLVM-19.

The bridge (``native/optgym_llvm.c``) is compiled once per source version into the user's
cache directory with clang-19 (or ``cc``) and loaded with ctypes. Only the worker process
loads it: a crash inside LLVM then ends the worker, never the user's process.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from optgym.datasets.cache import cache_dir

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


def library_path() -> Path:
    """Path of the compiled bridge for the current source, building it if needed."""
    _check_prerequisites()
    digest = hashlib.sha256(SOURCE.read_bytes() + str(LLVM_PREFIX).encode()).hexdigest()[:16]
    target = cache_dir() / "native" / f"libogllvm-{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [
        _compiler(), "-O2", "-shared", "-fPIC", str(SOURCE), "-o", tmp,
        f"-I{LLVM_PREFIX / 'include'}", f"-L{LLVM_PREFIX / 'lib'}", "-lLLVM-19",
        f"-Wl,-rpath,{LLVM_PREFIX / 'lib'}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise LlvmNotFoundError(
            f"building OptGym's LLVM bridge failed ({' '.join(cmd)}):\n{proc.stderr}\n"
            f"Make sure these are installed: {INSTALL_HINT}"
        )
    os.replace(tmp, target)  # atomic: concurrent workers may build at once
    return target


_LIB: ctypes.CDLL | None = None


def load() -> ctypes.CDLL:
    """Load the bridge with its function signatures declared."""
    global _LIB
    if _LIB is not None:
        return _LIB
    lib = ctypes.CDLL(str(library_path()))
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
