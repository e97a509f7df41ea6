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
