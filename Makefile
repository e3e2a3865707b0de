# `make demo` and `make test` each set up .venv on their own (only when set-up files changed).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export MPLBACKEND := Agg
# A local Ray listens on 127.0.0.1 only, and writes no token under ~/.ray.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_AUTH_MODE := disabled
# Test processes (pytest-xdist): the suite keeps 2 cores busy with 2; `make test TEST_WORKERS=0` runs it in one.
TEST_WORKERS ?= 2

.PHONY: setup demo test lint docs

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hpsearch demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples docs/hooks.py docs/search_over_time.py
	$(VENV)/bin/ruff format --check src tests bench examples docs/hooks.py docs/search_over_time.py
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=30 $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples docs/hooks.py docs/search_over_time.py
	$(VENV)/bin/ruff format --check src tests bench examples docs/hooks.py docs/search_over_time.py

# The docs site, into site/ (warnings are errors: mkdocs.yml's `strict`), after the picture of docs/pruning.md, drawn
# from a real small search (~1 min), and the command line's reference docs/cli.md; tests/test_docs.py builds the site
# too, draws the picture from its runs and checks docs/cli.md.
docs: $(STAMP)
	$(PY) docs/hooks.py
	$(PY) docs/search_over_time.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --site-dir site
