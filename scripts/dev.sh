#!/usr/bin/env bash
# `npm run demo`: the whole system locally, offline, no Cloudflare or Clerk account.
#   1. applies the portal's migrations to the local D1 database (wrangler's local state)
#   2. seeds demo data if the database is empty
#   3. makes a manifest signing key pair in .dev.vars (npm run keys -- --dev-vars; an existing
#      one is kept) and runs one signed backup into local R2
#   4. makes sure .dev.vars has working auth settings (a local Clerk-style key pair, a random
#      cron secret, an offline publishable key), keeping any value already there
#   5. prints curl commands for the API, with a freshly minted admin token
#   6. serves the app on http://localhost:${PORT:-3000}, then prints a one-click admin sign-in link
#      (http://localhost:$((PORT+1))/, scripts/demo-signin.ts: sets the session cookie, redirects)
#
# Server (D1B_DEV_SERVER):
#   pages (default)  the production build (@cloudflare/next-on-pages, ~30 s) served by
#                    `wrangler pages dev`: workerd, the runtime Pages runs, so everything works,
#                    backups included. No hot reload: rerun after code changes.
#   next             `next dev` with hot reload and the same local bindings (next.config.js).
#                    Backups (POST /api/admin/backup, the cron route) fail there: Next's dev edge
#                    sandbox has no CompressionStream, which the backup library gzips with.
# Other knobs: PORT (3000), D1B_PERSIST_TO (.wrangler/state), SEED_ROWS (2000),
#              D1B_SKIP_BUILD=1 (reuse .vercel/output).
set -euo pipefail
cd "$(dirname "$0")/.."

export CI=true NEXT_TELEMETRY_DISABLED=1 VERCEL_TELEMETRY_DISABLED=1 WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
PORT="${PORT:-3000}"
export PORT
PERSIST="${D1B_PERSIST_TO:-.wrangler/state}"
export D1B_PERSIST_TO="$PERSIST"
SERVER="${D1B_DEV_SERVER:-pages}"
case "$SERVER" in pages | next) ;; *) echo "D1B_DEV_SERVER must be pages or next (got $SERVER)" >&2; exit 2 ;; esac

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "1/6 migrations (local D1: $PERSIST)"
npx wrangler d1 migrations apply tech-support-db --local --persist-to "$PERSIST"

step "2/6 demo data (only if the database is empty)"
npx tsx scripts/seed.ts --rows "${SEED_ROWS:-2000}" --if-empty --persist-to "$PERSIST"

step "3/6 signing key (.dev.vars) and one signed backup into local R2"
# Before the backup: the backup signs its manifest with BACKUP_SIGNING_KEY, and restores verify
# with BACKUP_VERIFY_KEY, both read from .dev.vars.
npx tsx scripts/keys.ts --dev-vars
npx tsx scripts/backup.ts --persist-to "$PERSIST"

step "4/6 auth settings in .dev.vars"
touch .dev.vars
chmod 600 .dev.vars
has_var() { grep -Eq "^[[:space:]]*$1=" .dev.vars; }
add_var() {
  # A file without a trailing newline would glue the new line onto its last one.
  [[ -s .dev.vars && $(tail -c1 .dev.vars | od -An -c | tr -d ' ') != '\n' ]] && echo >>.dev.vars
  printf '%s=%s\n' "$1" "$2" >>.dev.vars
  echo "  added $1" >&2
}
random_hex() { node -e "process.stdout.write(require('node:crypto').randomBytes($1).toString('hex'))"; }

publishable_key=$(npx tsx scripts/mint-token.ts --publishable-key)
dev_jwt_key=$(npx tsx scripts/mint-token.ts --public-key --one-line) # creates .wrangler/dev-clerk/ on first use
has_var CLERK_PUBLISHABLE_KEY || add_var CLERK_PUBLISHABLE_KEY "$publishable_key"
has_var NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY || add_var NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY "$publishable_key"
# Signs the auth state Clerk's middleware hands to routes: random even offline.
has_var CLERK_SECRET_KEY || add_var CLERK_SECRET_KEY "sk_test_local_$(random_hex 24)"
has_var CLERK_JWT_KEY || add_var CLERK_JWT_KEY "\"$dev_jwt_key\""
has_var CRON_SECRET || add_var CRON_SECRET "$(random_hex 32)"

# Minted tokens only verify when CLERK_JWT_KEY is the local key's public half.
configured_jwt_key=$(grep -E '^[[:space:]]*CLERK_JWT_KEY=' .dev.vars | tail -1 | sed -E 's/^[[:space:]]*CLERK_JWT_KEY=//; s/^"(.*)"$/\1/')
local_tokens=true
if [[ "$configured_jwt_key" != "$dev_jwt_key" ]]; then
  local_tokens=false
  echo "  note: .dev.vars has its own CLERK_JWT_KEY (a real Clerk instance?); tokens from" >&2
  echo "        scripts/mint-token.ts will be rejected. Use a session token of that instance." >&2
fi
cron_secret=$(grep -E '^[[:space:]]*CRON_SECRET=' .dev.vars | tail -1 | sed -E 's/^[[:space:]]*CRON_SECRET=//; s/^"(.*)"$/\1/')

step "5/6 how to call the API"
base="http://localhost:$PORT"
if $local_tokens; then
  admin_token=$(npx tsx scripts/mint-token.ts --role admin --ttl 28800 --azp "$base")
  cat >&2 <<EOF
An admin session token, valid 8 hours (mint more: npm run mint-token -- --role admin|member):

  export TOKEN=$admin_token

  curl -s --compressed -X POST -H "Authorization: Bearer \$TOKEN" $base/api/admin/backup      # back up now
  curl -s --compressed -H "Authorization: Bearer \$TOKEN" $base/api/admin/backup              # list
  curl -s --compressed -X DELETE -H "Authorization: Bearer \$TOKEN" "$base/api/admin/backup?dry_run=1"  # retention preview
  curl -s --compressed -OJ -H "Authorization: Bearer \$TOKEN" "$base/api/admin/backup/<name>?download=1"
  curl -s --compressed -H "Authorization: Bearer \$(npm run -s mint-token -- --role member)" $base/api/admin/backup   # 403
  curl -s --compressed -H "Authorization: Bearer \$TOKEN" $base/api/admin/backup/status     # health
  curl -s $base/api/health/backup                                                           # public: ok/stale only

The dashboard, $base/admin/backups, reads the session from cookies, as Clerk's frontend leaves
them. Offline there is no Clerk sign-in page: open $base, paste this into the browser's console
(DevTools), and it signs you in as the admin above (the token is still verified by the server):

  document.cookie="__session=$admin_token; path=/"; document.cookie="__client_uat=$(($(date +%s) - 60)); path=/"; document.cookie="__clerk_db_jwt=dvb_local; path=/"; location.href="/admin/backups"
EOF
fi
cat >&2 <<EOF
  curl -s --compressed -H "Authorization: Bearer $cron_secret" $base/api/cron/backup   # the scheduled run

(--compressed: wrangler's local server compresses like Cloudflare's edge does.)
API reference: $base/docs/backup-api
EOF

if [[ "$SERVER" == next ]]; then
  step "6/6 next dev on $base (hot reload; backups do not run under next dev, see the top of this script)"
  exec npx next dev -p "$PORT"
fi

if [[ "${D1B_SKIP_BUILD:-}" == 1 && -f .vercel/output/static/_worker.js/index.js ]]; then
  step "6/6 serving the existing build (.vercel/output) on $base"
else
  step "6/6 production build (next-on-pages), then wrangler pages dev on $base"
  npx @cloudflare/next-on-pages
fi
# The one-click sign-in link, served outside the app (scripts/demo-signin.ts); it prints its link
# once the app answers, i.e. after the build and wrangler's own output. Ends with this process.
if $local_tokens; then
  SIGNIN_PORT="${D1B_SIGNIN_PORT:-$((PORT + 1))}"
  D1B_DEMO_TOKEN="$admin_token" npx tsx scripts/demo-signin.ts --app-port "$PORT" --port "$SIGNIN_PORT" --parent $$ &
fi
exec npx wrangler pages dev --port "$PORT" --persist-to "$PERSIST"
