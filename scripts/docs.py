#!/usr/bin/env python3
"""Build OptGym's documentation site: ``mkdocs build --strict`` on ``mkdocs.yml``.

    scripts/docs.py build [--out docs-site]

The site goes into ``--out`` (default ``docs-site``, relative to the working folder). The
pages come from mkdocs plugins, configured in ``mkdocs.yml``: the hand-written pages of
``docs/``, the API pages rendered from docstrings by mkdocstrings (griffe, with
``scripts/griffe_optgym.py``), and the reference pages per env, agent and command that
``scripts/docs_reference.py`` generates at build time (mkdocs-gen-files); nothing is
written into the repository. Any mkdocs warning (a broken link, a page missing from the
nav, an object mkdocstrings cannot find) fails the build: the status is 1 and mkdocs'
output is printed. ``mkdocs build`` and ``mkdocs serve`` work on the same file directly.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mkdocs.yml"
DEFAULT_OUT = "docs-site"
#: mkdocs and two of its plugins print a banner about MkDocs 2.0 on every build; these
#: variables turn it off (it is not a warning of the build).
QUIET = {"DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}


class DocsError(RuntimeError):
    """A documentation build that failed or warned; the message holds mkdocs' output."""


def check_out(out: Path) -> None:
    """``DocsError`` unless ``out`` may be emptied: mkdocs deletes what the site folder holds
    before it writes, so only a missing or empty folder or an earlier docs build will do
    (the leaderboard's site, say, is not)."""
    if out.is_file():
        raise DocsError(f"--out {out} is a file; give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / "search" / "search_index.json").is_file():
        raise DocsError(
            f"--out {out} holds files that are not a docs site, and mkdocs empties the folder "
            f"it builds into; give a new folder (default: {DEFAULT_OUT})"
        )


def build(out: Path, config: Path = CONFIG) -> int:
    """Build the site of ``config`` into ``out``, strictly; the number of pages.
    :class:`DocsError` (with mkdocs' output) when mkdocs fails or warns."""
    out = out.resolve()
    check_out(out)
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(out)],
        capture_output=True, text=True, cwd=config.parent, env={**os.environ, **QUIET},
    )  # fmt: skip
    output = (proc.stdout + proc.stderr).strip()
    warnings = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    if proc.returncode != 0 or warnings:
        raise DocsError(f"mkdocs build --strict failed (status {proc.returncode}):\n{output}")
    return sum(1 for _ in out.rglob("index.html"))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; the exit status."""
    parser = argparse.ArgumentParser(prog="scripts/docs.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("build", help="build the site, strictly (mkdocs build --strict)")
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"site folder, relative to the working folder (default: {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        count = build(Path(args.out))
    except DocsError as e:
        print(f"docs: error: {e}", file=sys.stderr)
        return 1
    print(f"built {count} pages into {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
