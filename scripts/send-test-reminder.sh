#!/usr/bin/env bash
# Reminder of the next quarterly backup restoration test; POSTs it to REMINDER_WEBHOOK_URL when set.
#   bash scripts/send-test-reminder.sh [--date YYYY-MM-DD] [--json]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/node_modules/.bin/tsx" "$root/scripts/send-test-reminder.ts" "$@"
