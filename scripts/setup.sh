#!/usr/bin/env bash
# OptGym's one set-up script, idempotent. On a fresh Debian 12 machine it installs what is
# missing (Debian packages, a virtualenv in .venv, the CPU build of PyTorch, OptGym itself),
# then runs one job:
#   scripts/setup.sh main   -> build the real-program dataset and run the main benchmark
#   scripts/setup.sh test   -> run the test suite
#   scripts/setup.sh        -> set up only
set -euo pipefail

job="${1:-none}"
case "$job" in main|test|none) ;; *)
  echo "usage: scripts/setup.sh [main|test]  (got '$job')" >&2; exit 2;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# ---- Debian packages ----------------------------------------------------------------------
# chromium + chromium-driver: the leaderboard site is tested in a real headless browser;
# bubblewrap: the sandbox submitted agents run in
apt_packages=(llvm-19 llvm-19-dev clang-19 csmith libcsmith-dev dpkg-dev chromium chromium-driver
              bubblewrap python3-venv python3-dev)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Python that already has venv (pyenv, a custom build) needs no python3-venv/-dev.
if python3 -c "import venv, ensurepip" 2>/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == python3-* ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "[setup] installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- Python environment ---------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
py=.venv/bin/python
# The CPU build of PyTorch, pinned: a plain "torch" can pull a multi-GB CUDA build.
if ! $py -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[setup] installing torch 2.13.0 (CPU)"
  $py -m pip install -q torch==2.13.0
fi
if ! $py -c "import optgym, pytest, ruff, ray" 2>/dev/null || [ pyproject.toml -nt .venv/.optgym-installed ]; then
  echo "[setup] installing optgym and its dependencies (with Ray, for --executor ray)"
  $py -m pip install -q -e ".[dev,ray]"
  touch .venv/.optgym-installed
fi

# ---- the job --------------------------------------------------------------------------------
case "$job" in
  main)
    .venv/bin/optgym datasets build debian-v0
    .venv/bin/optgym bench pass-ordering \
      --agent oz --agent random --agent greedy \
      --dataset generator://csmith-v0 --dataset benchmark://debian-v0 --split test \
      --episodes 8 --budget calls=2500,seconds=50 --workers 2 \
      --results results/pass-ordering.jsonl --plot results/pass-ordering.png
    .venv/bin/optgym validate results/pass-ordering.jsonl --budget calls=2500,seconds=50
    ;;
  test)
    .venv/bin/ruff check .
    # the documentation site, strict: any mkdocs warning fails the run
    .venv/bin/python scripts/docs.py build --out docs-site
    .venv/bin/python -m pytest -q tests
    ;;
esac
