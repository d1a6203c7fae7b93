"""Package discovery for the one import package ``optgym``, whose subpackages live in folders
at the repository root (``envs/`` is ``optgym.envs``, ...): every folder with an
``__init__.py`` under a mapped root is a package, so nobody keeps the list by hand. The rest
of the metadata is in pyproject.toml."""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
PACKAGE_DIRS = {
    "optgym": "optgym",
    "optgym.envs": "envs",
    "optgym.agents": "agents",
    "optgym.wrappers": "wrappers",
    "optgym.datasets": "datasets",
    "optgym.leaderboard": "leaderboard",
}


def _packages() -> list[str]:
    found = []
    for package, folder in PACKAGE_DIRS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT / folder).parts
            if "__pycache__" not in parts:
                found.append(".".join((package, *parts)))
    return found


setup(packages=_packages(), package_dir=PACKAGE_DIRS)
