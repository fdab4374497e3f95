// The only place that builds and parses R2 keys for backups. The bucket also holds the portal's
// client documents, so everything that lists, reads or deletes goes through these strict patterns.
import { BACKUP_PREFIX, STAGING_PREFIX } from "../names";

export { BACKUP_PREFIX };

const NAME_RE = /^database-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$/;
// `.sql.gz.age`: the same gzip SQL inside an age file (BACKUP_AGE_RECIPIENTS set when it was made).
const KEY_RE =
  /^backups\/(\.staging\/)?(database-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})\.(sql\.gz(?:\.age)?|manifest\.json)$/;

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

/** The keys of a backup; `encrypted`: its object (and staged copy) is the age form `.sql.gz.age`. */
export function keysFor(name: string, opts: { encrypted?: boolean } = {}): BackupKeys {
  if (!NAME_RE.test(name)) throw new TypeError(`not a backup name: ${name}`);
  const ext = opts.encrypted ? ".sql.gz.age" : ".sql.gz";
  return {
    name,
    object: `${BACKUP_PREFIX}${name}${ext}`,
    manifest: `${BACKUP_PREFIX}${name}.manifest.json`,
    staging: `${STAGING_PREFIX}${name}${ext}`,
  };
}

/** Every key a backup's object (or its staged copy) may have, plain and encrypted: for existence checks and deletes. */
export function allObjectKeysFor(name: string): { objects: string[]; staging: string[] } {
  const forms = [keysFor(name), keysFor(name, { encrypted: true })];
  return { objects: forms.map((k) => k.object), staging: forms.map((k) => k.staging) };
}

/** The file name a backup object is downloaded as (`database-….sql.gz` or `….sql.gz.age`). */
export function objectFileName(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
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
export function parseBackupKey(key: string): { name: string; kind: BackupKeyKind; timestamp: Date; encrypted: boolean } | null {
  const m = KEY_RE.exec(key);
  if (!m) return null;
  const name = m[2];
  const timestamp = timestampOf(name);
  if (!timestamp) return null;
  const isObject = m[3] !== "manifest.json";
  if (m[1] && !isObject) return null;
  const kind: BackupKeyKind = isObject ? (m[1] ? "staging" : "object") : "manifest";
  return { name, kind, timestamp, encrypted: m[3] === "sql.gz.age" };
}

/**
 * Accepts what a person would type to name a backup — `database-…`, `database-….sql.gz(.age)` or
 * the full `backups/database-….sql.gz(.age)` key — and returns the bare name, or null for anything else.
 */
export function parseBackupName(input: string): string | null {
  let s = input.trim();
  if (s.startsWith(BACKUP_PREFIX)) s = s.slice(BACKUP_PREFIX.length);
  s = s.replace(/\.(sql\.gz(\.age)?|manifest\.json)$/, "");
  return timestampOf(s) ? s : null;
}
