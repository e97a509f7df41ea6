#!/usr/bin/env bash
# Installs the Debian packages a make target needs; a fast no-op when they are all present.
#
#   scripts/install-system-deps.sh base    python3-venv, only when `python3 -m venv` cannot work
#                                          (Debian ships ensurepip separately)
#   scripts/install-system-deps.sh run     base + espeak-ng (the local voice's fallback)
#   scripts/install-system-deps.sh test    run + redis-server and redis-sentinel (failover
#                                          tests), chromium and
#                                          fonts-dejavu-core (the playground's browser test),
#                                          systemd (systemd-analyze checks the units in deploy/)
#   scripts/install-system-deps.sh bench   test + libopus0 (the Go callers' pre-encoded audio)
#   scripts/install-system-deps.sh [all]   every one of them (`make system-deps`)
#
# Presence is probed by what is used (a binary, a font file, a library), so the check costs a
# few milliseconds and works wherever the tools came from. Missing packages are installed with
# apt-get (through sudo when not root); without apt-get the script names them and fails.
# Go (>= 1.26, for livekit-server and bench/loadgen) is not a Debian package this needs:
# scripts/build-livekit-server.sh says so when it has to build and Go is missing.
set -euo pipefail
profile="${1:-all}"
python="${PY:-python3}"

present() {  # present PACKAGE: whether what the package provides is already here
  case "$1" in
    python3-venv) "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
    espeak-ng) command -v espeak-ng >/dev/null ;;
    redis-server) command -v redis-server >/dev/null ;;
    redis-sentinel) command -v redis-sentinel >/dev/null ;;
    chromium) [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null ;;
    fonts-dejavu-core) [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] ;;
    systemd) command -v systemd-analyze >/dev/null ;;
    libopus0) "$python" -c 'import ctypes.util, sys; sys.exit(not ctypes.util.find_library("opus"))' ;;
    *) echo "install-system-deps: no probe for $1" >&2; return 1 ;;
  esac
}

packages=(python3-venv)
case "$profile" in
  base) ;;
  run) packages+=(espeak-ng) ;;
  test) packages+=(espeak-ng redis-server redis-sentinel chromium fonts-dejavu-core systemd) ;;
  bench | all)
    packages+=(espeak-ng redis-server redis-sentinel chromium fonts-dejavu-core systemd libopus0)
    ;;
  *) echo "usage: $0 [base | run | test | bench | all]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  present "$pkg" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing system packages (Debian names): ${missing[*]}" >&2
  echo "this machine has no apt-get: install them (or your system's equivalents) yourself" >&2
  exit 1
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "missing system packages: ${missing[*]}; run as root, or install sudo, to install them" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
echo "installing system packages: ${missing[*]}" >&2
"${sudo_cmd[@]}" apt-get update -qq
# env inside sudo: sudo resets the environment, and apt must not stop to ask questions.
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
