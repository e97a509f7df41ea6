#!/usr/bin/env bash
# Runs a local dev livekit-server (key devkey, secret secret, port 7880) whose webhooks go to
# the daemon, then the daemon with config.toml and the playground (`run --playground`: the
# config file itself keeps it off) in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
server="$(bash scripts/build-livekit-server.sh)"
webhook_port="$(.venv/bin/python -c 'from supervisor import load_config; from pathlib import Path; print(load_config(Path("config.toml")).server.port)')"
"$server" --dev --bind 127.0.0.1 --config-body "webhook: {api_key: devkey, urls: [\"http://127.0.0.1:${webhook_port}/webhook\"]}" \
  > livekit-server.log 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null' EXIT
echo "livekit-server (dev) on ws://127.0.0.1:7880, log in livekit-server.log; webhooks -> :${webhook_port}"
echo "playground: http://127.0.0.1:${webhook_port}/playground"
.venv/bin/voice-supervisor run --config config.toml --playground
