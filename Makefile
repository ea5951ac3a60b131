# The two commands of the README are `make demo` and `make test`; both set up what they need.
VENV := .venv/bin
DATA ?= data

.PHONY: setup demo test lint typecheck pytest benchmarks docs clean

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/fractal-aggregator demo --data-dir $(DATA)

test: setup lint typecheck pytest

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

# Two runs: the library is one package under two names (`fractal` and, inside the integration,
# `custom_components.fractal_node.fractal`), and mypy must see each name on its own. Only the
# first puts the integration's folder on the path (to find `fractal`); in the second, platform
# modules such as select.py would otherwise clash with the standard library's.
typecheck:
	MYPYPATH=custom_components/fractal_node:. $(VENV)/mypy -p fractal -p aggregator_cloud
	$(VENV)/mypy -p custom_components.fractal_node

pytest:
	$(VENV)/pytest -q

benchmarks: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

docs: setup
	$(VENV)/mkdocs serve -a 127.0.0.1:8000

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
