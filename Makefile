# The two commands of the README are `make demo` and `make test`; both set up what they need.
VENV := .venv/bin
DATA ?= data

.PHONY: setup demo test lint typecheck pytest aws-check benchmarks docs clean

setup:
	@scripts/setup.sh

demo: setup
	$(VENV)/fractal-aggregator demo --data-dir $(DATA)

test: setup lint typecheck aws-check pytest

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

# The AWS stack, offline: lint the SAM template and build the Lambdas (wheels from PyPI, no AWS
# calls; sam wants a region and credentials to exist, never uses them here). The layer's
# arm64 wheels are fetched by pip of our Python 3.13 (aggregator_cloud/Makefile).
SAM_ENV := AWS_DEFAULT_REGION=eu-west-2 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
	SAM_CLI_TELEMETRY=0 PYTHON="$(CURDIR)/.venv/bin/python"
aws-check: setup
	cd aggregator_cloud && $(SAM_ENV) ../.venv-sam/bin/cfn-lint template.yaml
	cd aggregator_cloud && $(SAM_ENV) ../.venv-sam/bin/sam validate --lint
	cd aggregator_cloud && $(SAM_ENV) ../.venv-sam/bin/sam build

benchmarks: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

docs: setup
	$(VENV)/mkdocs serve -a 127.0.0.1:8000

clean:
	rm -rf .venv .venv-sam .mypy_cache .mypy_path .ruff_cache .pytest_cache aggregator_cloud/.aws-sam
