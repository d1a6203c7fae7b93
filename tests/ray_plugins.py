"""Agents the Ray tests run on the cluster (its workers import this module: the test starts
the cluster with this folder on PYTHONPATH)."""

from __future__ import annotations

import os


class Crasher:
    """Notes each start in the file ``OPTGYM_CRASH_LOG`` names, then dies of SIGABRT, as a
    backend's native crash would."""

    problems = ("pass-ordering",)

    def solve(self, env, benchmark, budget, seed=None):
        with open(os.environ["OPTGYM_CRASH_LOG"], "a") as log:
            log.write(f"{benchmark} {seed}\n")
        os.abort()
