"""Cutting a process off the network, for episodes the verifier runs (the closed track).

:func:`no_network` moves the calling process into a new, empty network namespace (Linux
``unshare(CLONE_NEWNET)``; unprivileged users get a user namespace along with it): no
interface is up there, not even loopback, so every connection fails, and the processes it
starts (LLVM, SCIP and Halide workers) inherit the cut.

>>> no_network()  # in a worker process: from here on, no socket reaches anything
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def _unshare(flags: int) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def no_network() -> None:
    """Leave every network this process could reach; ``RuntimeError`` saying why when the
    system does not allow it (no Linux namespaces, or user namespaces switched off)."""
    if not hasattr(os, "getuid"):
        raise RuntimeError("episodes without network need Linux network namespaces")
    error = _unshare(CLONE_NEWNET)
    if error == errno.EPERM:
        error = _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    if error:
        raise RuntimeError(
            f"cannot cut this process off the network (unshare: {os.strerror(error)}); "
            "run as root or enable user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )


def network_reachable(host: str = "127.0.0.1", port: int = 9, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` gets anywhere (an answer or a refusal); in a
    process after :func:`no_network` it does not, loopback included."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True  # something answered: the network is there
    except OSError:
        return False


__all__ = ["network_reachable", "no_network"]
