#!/usr/bin/env bash
# Applies the portal's migrations to the local D1 database without prompting, so it can run in
# scripts, CI and tests alike. Extra arguments go to wrangler, e.g.:
#   scripts/migrate-local.sh --persist-to /tmp/state
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# wrangler asks for confirmation on a terminal unless CI is set; metrics would try the network.
export CI=true WRANGLER_SEND_METRICS=false
# --config instead of cd'ing to the root, so a relative --persist-to means the caller's directory.
exec "$root/node_modules/.bin/wrangler" d1 migrations apply tech-support-db --local --config "$root/wrangler.toml" "$@"
