"""The Debian tools LLVM datasets are made with, found or explained."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

APT_PACKAGES = "llvm-19 clang-19 csmith libcsmith-dev"

# CompilerGym's cBench flags: optimizations off in the front end, IR left for the passes.
CLANG_FLAGS = ["-O1", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", "-w"]


def tool(name: str, package: str) -> str:
    """Absolute path of ``name`` or a ``FileNotFoundError`` with the install command."""
    path = shutil.which(name)
    if not path:
        raise FileNotFoundError(
            f"{name} not found on PATH; it comes from Debian's {package} package: "
            f"sudo apt-get install {package}"
        )
    return path


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 300) -> bytes:
    """Run a build command; a failure raises ``RuntimeError`` with its stderr."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}")
    return proc.stdout
