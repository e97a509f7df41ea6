# voice-supervisor: the two commands of a fresh machine are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup system-deps run test lint bench

$(BIN)/voice-supervisor: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/voice-supervisor
	bash scripts/build-livekit-server.sh >/dev/null
	bash scripts/build-playground.sh

system-deps:
	bash scripts/install-system-deps.sh

# A local dev livekit-server (devkey/secret, webhooks to this daemon) and the daemon with the
# shipped config.toml, in the foreground. Ctrl-C stops both.
run: setup
	bash scripts/dev.sh

# Every test: unit, e2e (real livekit-server), faults, failover.
test: setup
	$(BIN)/python -m pytest tests

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	mkdir -p bench/results
	$(BIN)/python bench/join.py --rooms 20 --json bench/results/join.json
	$(BIN)/python bench/latency.py --turns 50 --json bench/results/latency.json
	$(BIN)/python bench/persistence.py --events 100000 --json bench/results/persistence.json
	$(BIN)/python bench/webhooks.py --requests 20000 --json bench/results/webhooks.json
	$(BIN)/python bench/failover.py --json bench/results/failover.json
	$(BIN)/python bench/rooms.py --json bench/results/rooms.json
