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
# `custom_components.fractal_node.fractal`), and mypy must see each name on its own. The first
# finds `fractal` through a path entry holding only a link to it: the integration's own folder
# on the path would turn its platform modules (select.py, ...) into standard-library modules.
typecheck:
	mkdir -p .mypy_path && ln -sfn ../custom_components/fractal_node/fractal .mypy_path/fractal
	MYPYPATH=.mypy_path:. $(VENV)/mypy -p fractal -p aggregator_cloud
	$(VENV)/mypy -p custom_components.fractal_node

pytest:
	$(VENV)/pytest -q

benchmarks: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

docs: setup
	$(VENV)/mkdocs serve -a 127.0.0.1:8000

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
