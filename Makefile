# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
CONFIG ?= deploy/demo/gateway.yaml
# Processes deciding and relaying (gateway serve --workers): `make run WORKERS=2`.
WORKERS ?= 1
# pytest processes of make test (every test makes its own database, exchange and queues).
TEST_WORKERS ?= 2
BIN    := $(VENV)/bin
GATEWAY := $(BIN)/gateway --config $(CONFIG)

.PHONY: run test test-cluster install services browser demo-setup lint typecheck layers routes mappings schemas clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

services:
	deploy/scripts/ensure-services.sh

demo-setup: install services
	$(BIN)/gateway demo keys --key var/demo/demo-van.key
	$(BIN)/gateway demo pki --folder var/demo
	$(BIN)/gateway demo console-admin --file var/demo/console-users.yaml
	$(GATEWAY) db create
	$(GATEWAY) db upgrade
	@$(GATEWAY) agencies provision || echo "make run: the demo agencies' broker users are not" \
	  "provisioned (see above); the gateway runs, but 'gateway agency run CODE' cannot connect" \
	  "until '$(GATEWAY) agencies provision' succeeds"

## make run: install, make sure PostgreSQL and RabbitMQ are up, migrate, serve the demo.
run: demo-setup
	exec $(GATEWAY) serve --workers $(WORKERS)

## make schemas: regenerate schemas/edifact (from ../shared/directories) and schemas/canonical.
schemas: install
	$(BIN)/gateway schemas build
	$(BIN)/gateway schemas canonical

lint: install
	$(BIN)/ruff check gateway tests bench

typecheck: install
	$(BIN)/mypy --strict gateway bench

layers: install
	$(BIN)/lint-imports

## routes: the shipped routing table loads strictly against the demo agencies.
routes: install
	$(BIN)/gateway demo keys --key var/demo/demo-van.key
	$(BIN)/gateway demo pki --folder var/demo
	$(GATEWAY) routes check

## mappings: every mapping file compiles against schemas/edifact and the canonical model.
mappings: install
	$(BIN)/gateway mappings check

## browser: Debian's chromium and chromium-driver for tests/browser, installed when this is
## Debian and we are root; anything else (or a failed install) only says so, and the browser
## tests then skip with the reason.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { timeout 300 apt-get install -y --no-install-recommends chromium chromium-driver \
	    || { timeout 300 apt-get update && timeout 600 apt-get install -y \
	         --no-install-recommends chromium chromium-driver; }; } >/dev/null \
	  || echo "make browser: chromium could not be installed; the browser tests will skip"; \
	else echo "make browser: not root on Debian; install chromium and chromium-driver" \
	  "for the browser tests (tests/browser), which skip until then"; fi

## make test: install and run every test and quality gate.
test: install services browser lint typecheck layers routes mappings
	$(BIN)/pytest -q -n $(TEST_WORKERS)

## make test-cluster: issue 16's rig (three RabbitMQ nodes, a PostgreSQL primary and standby,
## two gateway nodes) losing a broker, a gateway and the primary under load; as root, ~3 min.
test-cluster: install
	$(BIN)/pytest -q -s -p no:cacheprovider tests/cluster --override-ini addopts=

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
