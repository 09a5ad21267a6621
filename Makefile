# Two commands do everything on a fresh clone:  `make synth`  and  `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
EXTRAS := runtime,local,training,pipeline-build,dev
CDK := npx --no-install cdk
# No telemetry, no notices: synth must not reach the network.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup synth test bench bundles clean browser

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## synth: synthesize every environment offline, run cdk-nag and cfn-lint, print a summary
synth: setup
	rm -rf cdk.out
	$(CDK) synth '**' --quiet --no-notices
	$(VENV)/bin/llmops report --cdk-out cdk.out

## browser: headless Chromium for the tests that open a page (Debian package; root installs it, as in CI)
browser:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; else echo "install chromium (apt-get install chromium) for the browser tests"; fi; }

## test: the whole test suite, then the real Lambda bundle build with sizes
test: setup browser
	$(VENV)/bin/pytest -n 2 --dist loadgroup
	$(VENV)/bin/llmops bundles

## bench: benchmarks, each printed beside its baseline
bench: setup
	@set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script; done

bundles: setup
	$(VENV)/bin/llmops bundles

clean:
	rm -rf cdk.out .build .pytest_cache
