PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILT := $(VENV)/.compiled
# The modules bot/compiled.py lists: a change to one rebuilds them all.
HOT_SOURCES := $(shell $(PY) -c "import runpy; c = runpy.run_path('bot/compiled.py'); print(*map(c['source_path'], c['MODULES']))")

.PHONY: install demo test lint format run bench clean

# "compat": the checkout itself goes on sys.path, where the compiled modules' shared
# library (briefbot__mypyc.*.so, a top-level module) sits.
$(STAMP): pyproject.toml setup.py
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $(STAMP)

# The ingest hot path compiled with mypyc, in place (BRIEFBOT_COMPILE=0 leaves it pure).
# Extensions of modules no longer listed are removed first: they would still import.
$(BUILT): $(STAMP) setup.py bot/compiled.py $(HOT_SOURCES)
	find bot storage adapters -name '*.so' -delete
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(BUILT)

install: $(BUILT)

demo: $(BUILT)
	$(BIN)/briefbot demo

lint: $(BUILT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -q

run: $(BUILT)
	MALLOC_ARENA_MAX=2 $(BIN)/briefbot run

bench: $(BUILT)
	@for script in bench/*.py; do echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build briefbot__mypyc.*.so
	find bot storage adapters -name '*.so' -delete
