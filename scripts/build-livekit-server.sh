#!/usr/bin/env bash
# Builds livekit-server from its Go module once and caches the binary per version.
# Prints the binary's path. Does nothing but print it when the cached binary exists.
set -euo pipefail
version="${LIVEKIT_SERVER_VERSION:-v1.13.5}"
cache="${VOICE_SUPERVISOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/voice-supervisor}"
bin="$cache/livekit-server-$version"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build livekit-server (apt-get install golang or install Go >= 1.26)" >&2; exit 1; }
mkdir -p "$cache"
gobin="$(mktemp -d)"
trap 'rm -rf "$gobin"' EXIT
echo "building livekit-server $version (takes about 3 minutes the first time)..." >&2
start=$(date +%s)
GOTOOLCHAIN=local GOBIN="$gobin" GOFLAGS=-mod=mod \
  go install "github.com/livekit/livekit-server/cmd/server@$version" >&2
mv "$gobin/server" "$bin.tmp" && mv "$bin.tmp" "$bin"
echo "built livekit-server $version in $(( $(date +%s) - start ))s" >&2
echo "$bin"
