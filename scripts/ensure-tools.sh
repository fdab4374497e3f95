#!/usr/bin/env bash
# Installs the system tools the tests drive as real programs (sqlite3 restores dumps; Debian's
# Chromium runs the dashboard's browser test through playwright-core, which never downloads a
# browser; age decrypts encrypted backups with stock tools), so that `npm test` works on a fresh machine. Debian packages only; no-op when present.
set -euo pipefail
missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v age >/dev/null 2>&1 || missing+=(age)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
