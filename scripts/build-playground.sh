#!/usr/bin/env bash
# Builds the playground page: playground/ (TypeScript + livekit-client from npm, bundled by
# esbuild) → supervisor/playground/static/ (committed, served by the daemon at /playground).
#
#   scripts/build-playground.sh           build when the sources changed since the committed
#                                         build (a no-op otherwise: no node or npm needed)
#   scripts/build-playground.sh --force   build anyway
#   scripts/build-playground.sh --check   build into a temporary folder and fail unless it is
#                                         byte for byte the committed build (needs node + npm)
#
# The stamp static/SOURCES.sha256 lists the sha256 of every source and output file;
# tests/supervisor/test_playground.py checks it, so sources edited without a build fail the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
src=playground
out=supervisor/playground/static
stamp="$out/SOURCES.sha256"
mode="${1:-}"
case "$mode" in
  "" | --force | --check) ;;
  *) echo "usage: $0 [--force | --check]" >&2; exit 2 ;;
esac

listing() {  # sha256 of the sources and of the outputs in $1, sorted by path
  {
    find "$src/package.json" "$src/package-lock.json" "$src/tsconfig.json" "$src/build.mjs" \
      "$src/src" -type f
    find "$1" -maxdepth 1 -type f ! -name SOURCES.sha256 | sed "s|^$1/|$out/|"
  } | LC_ALL=C sort | while read -r path; do
    file="$path"
    [[ "$path" == "$out/"* ]] && file="$1/${path#"$out/"}"
    printf '%s  %s\n' "$(sha256sum "$file" | cut -d' ' -f1)" "$path"
  done
}

if [ -z "$mode" ] && [ -f "$stamp" ] && [ "$(listing "$out")" = "$(cat "$stamp")" ]; then
  echo "playground: up to date ($out)"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "playground: $tool is needed to build the page (Node >= 20 with npm)" >&2
    exit 1
  fi
done
(cd "$src" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent check)

if [ "$mode" = "--check" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$src" && node build.mjs "$tmp")
  if [ "$(listing "$tmp")" != "$(cat "$stamp")" ]; then
    diff <(cat "$stamp") <(listing "$tmp") >&2 || true
    echo "playground: the committed build differs from a fresh one; run $0 --force" >&2
    exit 1
  fi
  echo "playground: the committed build is reproducible"
  exit 0
fi

(cd "$src" && node build.mjs)
listing "$out" > "$stamp"
echo "playground: built into $out"
