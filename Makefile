# voice-supervisor: the two commands of a fresh machine are `make run` and `make test`. Each first
# installs the Debian packages it uses (scripts/install-system-deps.sh: sudo apt-get when some
# are missing, a no-op in milliseconds when none is), then the venv, livekit-server and the page.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := PY=$(PY) bash scripts/install-system-deps.sh

.PHONY: setup system-deps base-deps run test lint bench

# python3-venv (when `python3 -m venv` cannot work) before the venv is made.
base-deps:
	$(DEPS) base

$(BIN)/voice-supervisor: pyproject.toml | base-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/voice-supervisor
	bash scripts/build-livekit-server.sh >/dev/null
	bash scripts/build-playground.sh

# Every Debian package any target uses (run, test and bench).
system-deps:
	$(DEPS) all

# A local dev livekit-server (devkey/secret, webhooks to this daemon) and the daemon with the
# shipped config.toml plus the playground (run --playground), in the foreground. Ctrl-C stops both.
run: setup
	$(DEPS) run
	bash scripts/dev.sh

# Every test: unit, e2e (real livekit-server), faults, failover, the playground in Chromium.
# Any pytest failure fails make (exit 2), pytest's 5 (no tests collected) included.
test: setup
	$(DEPS) test
	$(BIN)/python -m pytest tests || { status=$$?; [ $$status -ne 5 ] || \
	  echo "pytest collected no tests: failing" >&2; exit $$status; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every benchmark whose figures the README and docs quote, with the command they quote; each
# writes bench/results/NAME.json with its meta (command, commit, date, machine), then
# docs/benchmarks.md is generated from all of them (bench/report.py; it never reruns anything).
bench: setup
	$(DEPS) bench
	mkdir -p bench/results
	$(BIN)/python bench/join.py --rooms 20 --json bench/results/join.json
	$(BIN)/python bench/latency.py --turns 50 --json bench/results/latency.json
	$(BIN)/python bench/latency.py --turns 10 --local --json bench/results/latency-local.json
	$(BIN)/python bench/persistence.py --events 200000 --json bench/results/persistence.json
	$(BIN)/python bench/deadletters.py --json bench/results/deadletters.json
	$(BIN)/python bench/webhooks.py --requests 20000 --json bench/results/webhooks.json
	$(BIN)/python bench/failover.py --json bench/results/failover.json
	$(BIN)/python bench/rooms.py --max-rooms 60 --step 5 --hold 15 --json bench/results/rooms.json
	$(BIN)/python bench/rtc_floor.py --rooms 20 --queue-ms 0 --json bench/results/rtc-floor.json
	$(BIN)/python bench/flood.py --json bench/results/flood.json
	$(BIN)/python bench/soak.py --rooms 480 --json bench/results/soak.json
	$(BIN)/python bench/soak.py --rooms 1200 --warmup-waves 30 --json bench/results/soak-long.json
	$(BIN)/python bench/soak.py --rooms 0 --providers local --json bench/results/idle.json
	$(BIN)/python bench/voice.py --rooms 2 --json bench/results/voice.json
	$(BIN)/python bench/providers.py --runs 30 --json bench/results/providers.json
	$(BIN)/python bench/agents.py --rounds 20 --json bench/results/agents.json
	$(BIN)/python bench/tools.py --turns 100 --json bench/results/tools.json
	$(BIN)/python bench/report.py --out docs/benchmarks.md
