// The only place that builds and parses R2 keys for backups. The bucket also holds the portal's
// client documents, so everything that lists, reads or deletes goes through these strict patterns.
import { BACKUP_PREFIX, STAGING_PREFIX } from "../names";

export { BACKUP_PREFIX };

const NAME_RE = /^database-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$/;
const KEY_RE =
  /^backups\/(\.staging\/)?(database-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})\.(sql\.gz|manifest\.json)$/;

export type BackupKeyKind = "object" | "manifest" | "staging";

export interface BackupKeys {
  name: string;
  object: string;
  manifest: string;
  staging: string;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `database-YYYY-MM-DD-HH-MM-SS` in UTC. */
export function backupNameFor(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new TypeError("backupNameFor: invalid date");
  return (
    `database-${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `-${pad(date.getUTCHours())}-${pad(date.getUTCMinutes())}-${pad(date.getUTCSeconds())}`
  );
}

export function keysFor(name: string): BackupKeys {
  if (!NAME_RE.test(name)) throw new TypeError(`not a backup name: ${name}`);
  return {
    name,
    object: `${BACKUP_PREFIX}${name}.sql.gz`,
    manifest: `${BACKUP_PREFIX}${name}.manifest.json`,
    staging: `${STAGING_PREFIX}${name}.sql.gz`,
  };
}

/** The UTC time a backup name encodes, or null when the name is not a real date. */
export function timestampOf(name: string): Date | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Reject names like 2026-02-31 that Date.UTC would silently roll over.
  return backupNameFor(date) === name ? date : null;
}

/** Parses an R2 key; anything that is not exactly a backup key (client documents, look-alikes) is null. */
export function parseBackupKey(key: string): { name: string; kind: BackupKeyKind; timestamp: Date } | null {
  const m = KEY_RE.exec(key);
  if (!m) return null;
  const name = m[2];
  const timestamp = timestampOf(name);
  if (!timestamp) return null;
  const kind: BackupKeyKind = m[1] ? (m[3] === "sql.gz" ? "staging" : "manifest") : m[3] === "sql.gz" ? "object" : "manifest";
  if (m[1] && m[3] !== "sql.gz") return null;
  return { name, kind, timestamp };
}

/**
 * Accepts what a person would type to name a backup — `database-…`, `database-….sql.gz` or the
 * full `backups/database-….sql.gz` key — and returns the bare name, or null for anything else.
 */
export function parseBackupName(input: string): string | null {
  let s = input.trim();
  if (s.startsWith(BACKUP_PREFIX)) s = s.slice(BACKUP_PREFIX.length);
  s = s.replace(/\.(sql\.gz|manifest\.json)$/, "");
  return timestampOf(s) ? s : null;
}
