#!/usr/bin/env bash
# The quarterly backup restoration test: newest (or named) backup -> download -> verify ->
# restore into a throw-away local D1 -> checks -> report in docs/backup-tests/. Thin wrapper over
# scripts/restoration-test.ts (lib/restoration-test); --help for the options.
#   bash scripts/test-restoration.sh [backup-key] [--remote] [--persist-to DIR] [--report-dir DIR] [--log-to-db]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Downloads and the throw-away database hold every client's data: always removed, even on Ctrl-C.
work="$(mktemp -d "${TMPDIR:-/tmp}/d1-restoration-test.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export CI=true WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
status=0
"$root/node_modules/.bin/tsx" "$root/scripts/restoration-test.ts" --work-dir "$work" "$@" || status=$?
exit "$status"
