# Two commands do all set-up on a fresh machine: `make dev` and `make test`.
# Both create .venv and install the workspace first (uv is bootstrapped with pip if missing). Bytecode is
# compiled at install, as in the images: the commands start in tenths of a second even where
# PYTHONDONTWRITEBYTECODE is set (docs/benchmarks.md).

UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
STAMP := $(VENV)/.installed
PYTHON_SOURCES := services shared testing deploy bench scripts
TYPED_SOURCES := services/auth/src services/mcp/src shared/src testing/src scripts \
	services/auth/tests services/mcp/tests shared/tests testing/tests deploy/tests

.PHONY: install dev test fuzz lint docs fmt bench clean

$(UV):
	python3 -m pip install --user --quiet "uv>=0.5"

$(STAMP): $(UV) uv.lock pyproject.toml services/auth/pyproject.toml services/mcp/pyproject.toml shared/pyproject.toml testing/pyproject.toml
	$(UV) sync --frozen --all-packages --compile-bytecode
	touch $(STAMP)

install: $(STAMP)

dev: install
	$(VENV)/bin/python scripts/dev_stack.py

lint: install
	$(VENV)/bin/ruff check $(PYTHON_SOURCES)
	$(VENV)/bin/ruff format --check $(PYTHON_SOURCES)
	$(VENV)/bin/mypy $(TYPED_SOURCES)

fmt: install
	$(VENV)/bin/ruff format $(PYTHON_SOURCES)
	$(VENV)/bin/ruff check --fix $(PYTHON_SOURCES)

# The documentation site; --strict turns a broken link or a page missing from the nav into a failure.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site

test: lint docs
	$(VENV)/bin/pytest

# The fuzz tests with many more examples than `make test` draws (FUZZ_EXAMPLES, per endpoint): minutes.
FUZZ_EXAMPLES ?= 1000
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest services/auth/tests/fuzz

bench: install
	$(VENV)/bin/python bench/report.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
