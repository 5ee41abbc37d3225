# `make testbed`: set up this machine, build images, bring up topologies/default.yaml.
# `make test`:    set up, then run the unit tests and the conformance suites in every mode.
VENV    := .venv
PY      := $(VENV)/bin/python
TESTBED := $(VENV)/bin/testbed
MODES   ?= iptables nftables ebpf
MODE    ?= iptables
TOPOLOGY ?= topologies/default.yaml

.PHONY: setup images testbed test unit conformance lint down clean

setup:
	@bash scripts/setup.sh

images: setup
	@$(TESTBED) images build

testbed: images
	@$(TESTBED) up -f $(TOPOLOGY)

unit: setup
	@$(PY) -m pytest -q tests

lint: setup
	@$(VENV)/bin/ruff check testbed tests suites

test: images
	@$(PY) -m testbed.testing.matrix --modes "$(MODES)" --unit

conformance: images
	@$(PY) -m testbed.testing.matrix --modes "$(MODE)"

down: setup
	@$(TESTBED) down --all

clean: down
	rm -rf .build build *.egg-info
