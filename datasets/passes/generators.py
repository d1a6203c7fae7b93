"""Seeded generators of LLVM bitcode: Csmith C programs and llvm-stress IR.

Each seed names one program; the same seed gives the same bitcode bytes wherever Debian
bookworm's csmith 2.3.0 and LLVM 19.1.7 are installed. Seeds are split as every seeded
dataset's are (``optgym.datasets.seeded.SPLIT_SEEDS``).
"""

from __future__ import annotations

from pathlib import Path

from optgym.datasets.passes.tools import CLANG_FLAGS, run, tool
from optgym.datasets.seeded import SeededDataset


class CsmithDataset(SeededDataset):
    suffix = ".bc"
    recipe_modules = ("optgym.datasets.passes.tools",)

    name = "csmith-v0"
    description = "Random C programs from Csmith, compiled to unoptimized LLVM bitcode."
    license = "BSD-2-Clause (Csmith); generated programs carry no license of their own"
    provenance = (
        "csmith --seed <seed> (Debian csmith 2.3.0), then clang-19 "
        + " ".join(CLANG_FLAGS)
        + " -I/usr/include/csmith on the file csmith-<seed>.c"
    )
    references = ("Yang et al., Finding and Understanding Bugs in C Compilers, PLDI 2011",)

    def generate(self, seed: int, workdir: Path) -> bytes:
        csmith = tool("csmith", "csmith")
        clang = tool("clang-19", "clang-19")
        include = Path("/usr/include/csmith")
        if not (include / "csmith.h").exists():
            raise FileNotFoundError(
                f"Csmith's headers are missing ({include}/csmith.h): "
                "sudo apt-get install libcsmith-dev"
            )
        src = f"csmith-{seed}.c"
        run([csmith, "--seed", str(seed), "--output", src], cwd=workdir, timeout=120)
        run([clang, *CLANG_FLAGS, f"-I{include}", src, "-o", "out.bc"], cwd=workdir)
        return (workdir / "out.bc").read_bytes()


class LlvmStressDataset(SeededDataset):
    suffix = ".bc"
    recipe_modules = ("optgym.datasets.passes.tools",)

    name = "llvm-stress-v0"
    description = "Random LLVM IR functions from llvm-stress, as bitcode."
    license = "Apache-2.0 WITH LLVM-exception (llvm-stress); generated IR has no license"
    provenance = "llvm-stress-19 -seed <seed> -size 100, then llvm-as-19"
    references = ("https://llvm.org/docs/CommandGuide/llvm-stress.html",)

    def generate(self, seed: int, workdir: Path) -> bytes:
        stress = tool("llvm-stress-19", "llvm-19")
        as_ = tool("llvm-as-19", "llvm-19")
        run([stress, "-seed", str(seed), "-size", "100", "-o", "stress.ll"], cwd=workdir)
        run([as_, "stress.ll", "-o", "out.bc"], cwd=workdir)
        return (workdir / "out.bc").read_bytes()
