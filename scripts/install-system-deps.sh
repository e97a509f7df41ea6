#!/usr/bin/env bash
# Debian packages the daemon and its tests use: espeak-ng (fallback TTS), sox (audio tools),
# redis-server (several daemons, failover tests), chromium and fonts (the playground's
# real-browser test), libopus0 (the benchmark's Go callers send audio pre-encoded with it).
# Go (>= 1.26) builds livekit-server and bench/loadgen.
set -euo pipefail
need=()
for pkg in espeak-ng sox redis-server chromium fonts-dejavu-core libopus0; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
  echo "Go >= 1.26 is needed to build livekit-server; install it from your distribution or go.dev" >&2
  exit 1
fi
