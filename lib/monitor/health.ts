// Backup health for the admin dashboard, the public status endpoint and the nightly alerts.
// The judgement itself (assessHealth) is a pure function of a few facts: when the newest complete
// backup was taken (from R2: a backup is complete only with its manifest, lib/backup/list.ts), how
// the newest backup run ended (from activity_log), and the issues found beside them (a damaged or
// future-dated backup, a failed restoration test, an interrupted run, old leftovers). Everything
// else here gathers those facts.
import {
  BackupError,
  findNewestBackup,
  hasVerifiedOffsite,
  listBackups,
  parseDetails,
  readBackupLock,
  scanListing,
  wrapBindingError,
  type BackupAction,
  type BackupListing,
  type BackupScan,
  type RunningLock,
} from "../backup";

/**
 * A backup older than this is stale. The cron runs daily (functions/wrangler.toml, 0 2 * * *), so
 * a healthy system's newest backup is at most 24 hours old just before the next run; 2 hours of
 * slack absorb a late trigger, a slow run and clock differences without paging anyone, while one
 * missed night is still reported the same morning (at 04:00 UTC).
 */
export const STALE_AFTER_HOURS = 26;

/** The cron Worker's schedule: daily at 02:00 UTC (functions/wrangler.toml `crons`; a test keeps them equal). */
export const SCHEDULE_HOUR_UTC = 2;
export const SCHEDULE_CRON = "0 2 * * *";

const HOUR_MS = 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;

/**
 * Green, amber, red:
 * - ok (green): the newest complete backup is at most 26 h old, the newest run did not fail, and
 *   nothing below is found.
 * - attention (amber): all is ok for restoring today, but something needs a person soon: a backup
 *   dated in the future (a clock fault; it is never deleted or counted as newest), leftovers of
 *   interrupted runs older than a day (retention is not removing them), an interrupted cleanup,
 *   and, with OFFSITE_S3_* set, a newest backup without a verified off-site copy (R2 holds it,
 *   but losing the bucket would lose it: the next run copies it).
 * - failing (red): the newest backup run failed and no complete backup is newer; or the newest
 *   backup fails verification (object missing, size or sha256 not its manifest's); or the newest
 *   restoration test failed; or a backup run died holding its lease (interrupted).
 * - stale (red): the newest complete backup is more than 26 h old.
 * - never (red): there is no complete backup at all.
 */
export type HealthStatus = "ok" | "attention" | "stale" | "failing" | "never";

export type HealthIssueCode =
  | "DAMAGED_BACKUP"
  | "RESTORATION_TEST_FAILED"
  | "INTERRUPTED_RUN"
  | "FUTURE_BACKUP"
  | "OLD_LEFTOVERS"
  | "NO_OFFSITE_COPY"
  | "RESTORE_DRILL_FAILED"
  | "RESTORE_DRILL_SKIPPED"
  | "RESTORE_DRILL_MISSING";

/** Once any restore drill was logged, one older than this is missing (the nightly run drills every night). */
export const DRILL_MISSING_AFTER_HOURS = 48;

/** Something found beside the newest backup's age and the last run; red ones make health failing, amber ones attention. */
export interface HealthIssue {
  code: HealthIssueCode;
  severity: "red" | "amber";
  message: string;
}

/** The backup run outcomes: every backup run (manual, CLI or nightly) ends with one of these. */
export const RUN_ACTIONS = [
  "database_backup_created",
  "database_backup_failed",
  "scheduled_backup_completed",
  "scheduled_backup_failed",
] as const satisfies readonly BackupAction[];
const SUCCESS_ACTIONS: readonly string[] = ["database_backup_created", "scheduled_backup_completed"];

export interface LastSuccess {
  /** R2 key of the backup object (`backups/database-….sql.gz`). */
  key: string;
  name: string;
  /** When the backup read the database (its manifest's createdAt), ISO. */
  createdAt: string;
  /** Hours from createdAt to the time of the check, two decimals (0 when createdAt is later). */
  ageHours: number;
  /** Bytes of the gzip'd backup object. */
  size: number;
  /** Number of tables in the backup. */
  tables: number;
  rows: number;
}

export interface LastRun {
  action: (typeof RUN_ACTIONS)[number];
  /** When the outcome was logged (activity_log.created_at). */
  at: string;
  ok: boolean;
  /** Why it failed (failures only). */
  reason?: string;
  /** BackupError code of a failure. */
  code?: string;
  /** Where a scheduled run failed: config, backup, or cleanup (after a good backup). */
  stage?: string;
}

export interface BackupHealth {
  status: HealthStatus;
  /** One sentence for people: why the status is what it is. */
  summary: string;
  /** What besides age and the last run made the status amber or red. */
  issues: HealthIssue[];
  /** The time the health was assessed at, ISO. */
  checkedAt: string;
  lastSuccess: LastSuccess | null;
  lastRun: LastRun | null;
  /** The newest nightly restore drill (lib/drill), or null when none was ever logged. */
  lastDrill?: LastDrill | null;
  /** The next 02:00 UTC strictly after checkedAt, ISO. */
  nextScheduledRun: string;
  staleAfterHours: number;
  /** Leftovers of interrupted runs (never offered for restore; removed by retention). */
  incompleteCount: number;
  backupsCount: number;
  /** Bytes of all complete backup objects. */
  totalSize: number;
  /** Bytes held by incomplete leftovers. */
  incompleteSize: number;
}

export interface HealthInput {
  /** createdAt of the newest complete backup (never a future-dated one), or null when there is none. */
  newestBackupAt: Date | string | null;
  /** The newest backup run outcome from activity_log, or null when none was logged. */
  lastRun: { ok: boolean; at: Date | string } | null;
  /** From healthIssues; none by default. */
  issues?: readonly HealthIssue[];
}

export interface HealthAssessment {
  status: HealthStatus;
  /** Age of the newest complete backup in hours (two decimals, never negative), or null. */
  ageHours: number | null;
  summary: string;
}

/** Shared with dashboard.ts: every date the monitor takes in is checked the same way. */
export function toTime(value: Date | string, what: string): number {
  const t = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(t)) throw new BackupError("INVALID_INPUT", `health: invalid date for ${what}`);
  return t;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/**
 * The staleness rule, pure so the dashboard, the public endpoint and the cron alerts agree:
 *
 * 1. never    — no complete backup exists. Checked first: nothing else matters if there is
 *               nothing to restore.
 * 2. failing  — the newest run outcome in activity_log is a failure AND no complete backup is
 *               newer than it. The second half keeps a backup that exists in R2 authoritative
 *               over the log (a success whose log write failed must not read as failing). A
 *               nightly run that made its backup but failed in retention is failing too: the
 *               cron run is marked failed and the bucket is no longer being trimmed.
 *               Failing wins over stale: it names a reason an admin can act on.
 * 3. stale    — the newest complete backup is more than STALE_AFTER_HOURS (26 h = the daily
 *               schedule + 2 h slack) older than `now`. Exactly 26 h is still ok.
 * 4. ok       — otherwise. A failure followed by a success (e.g. a manual backup the morning after
 *               a failed night) is ok again.
 */
export function assessHealth(input: HealthInput, now: Date): HealthAssessment {
  const nowMs = toTime(now, "now");
  if (input.newestBackupAt === null) {
    return { status: "never", ageHours: null, summary: "no complete backup exists" };
  }
  const newestMs = toTime(input.newestBackupAt, "newestBackupAt");
  const ageMs = Math.max(0, nowMs - newestMs);
  const ageHours = round2(ageMs / HOUR_MS);
  if (input.lastRun && !input.lastRun.ok && toTime(input.lastRun.at, "lastRun.at") >= newestMs) {
    return {
      status: "failing",
      ageHours,
      summary: `the last backup run failed; the newest complete backup is ${ageHours.toFixed(1)} h old`,
    };
  }
  const issues = input.issues ?? [];
  const also = (severity: HealthIssue["severity"] | null) =>
    issues
      .filter((i) => severity === null || i.severity === severity)
      .map((i) => `; ${i.message}`)
      .join("");
  const red = issues.some((i) => i.severity === "red");
  if (red) {
    const stale = ageMs > STALE_AFTER_HOURS * HOUR_MS ? ` (limit ${STALE_AFTER_HOURS} h)` : "";
    return { status: "failing", ageHours, summary: `the newest complete backup is ${ageHours.toFixed(1)} h old${stale}${also(null)}` };
  }
  if (ageMs > STALE_AFTER_HOURS * HOUR_MS) {
    return {
      status: "stale",
      ageHours,
      summary: `the newest complete backup is ${ageHours.toFixed(1)} h old (limit ${STALE_AFTER_HOURS} h)${also(null)}`,
    };
  }
  if (issues.length) return { status: "attention", ageHours, summary: `the newest complete backup is ${ageHours.toFixed(1)} h old${also(null)}` };
  return { status: "ok", ageHours, summary: `the newest complete backup is ${ageHours.toFixed(1)} h old` };
}

/** The newest restoration test's outcome, from activity_log; null when none was logged. */
export interface LastRestorationTest {
  ok: boolean;
  at: string;
  key: string | null;
}

/** activity_log.created_at is SQLite's `YYYY-MM-DD HH:MM:SS`, UTC without a zone: read it as UTC. */
export function sqliteUtc(at: string): string {
  return /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$/.test(at) ? `${at.replace(" ", "T")}Z` : at;
}

/** One restore drill's outcome as activity_log holds it (restore_drill_*). */
export interface LastDrill {
  outcome: "completed" | "failed" | "skipped";
  at: string;
  /** The backup object drilled. */
  key: string | null;
  /** What differed / why it was refused or skipped (failed and skipped only). */
  reason?: string;
  /** The replay time the drill measured: the RTO of that backup (completed only). */
  replayMs?: number;
}

export const DRILL_ACTIONS = ["restore_drill_completed", "restore_drill_failed", "restore_drill_skipped"] as const satisfies readonly BackupAction[];

/** A drill row as health and the dashboard read it. */
export function drillOf(row: { action: string; entity_id: string | null; details: string | null; created_at: string }): LastDrill {
  const d = parseDetails(row.details);
  const o = d && typeof d === "object" ? (d as Record<string, unknown>) : {};
  const drill: LastDrill = { outcome: row.action.slice("restore_drill_".length) as LastDrill["outcome"], at: row.created_at, key: row.entity_id };
  if (drill.outcome !== "completed" && str(o.reason)) drill.reason = str(o.reason);
  if (drill.outcome === "completed" && typeof o.replay_ms === "number") drill.replayMs = o.replay_ms;
  return drill;
}

/** The newest restore drill, or null when none was ever logged. */
export async function lastRestoreDrill(db: D1Database): Promise<LastDrill | null> {
  let row: { action: string; entity_id: string | null; details: string | null; created_at: string } | null;
  try {
    row = await db
      .prepare(`SELECT action, entity_id, details, created_at FROM activity_log WHERE action IN (${DRILL_ACTIONS.map(() => "?").join(", ")}) ORDER BY id DESC LIMIT 1`)
      .bind(...DRILL_ACTIONS)
      .first();
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading activity_log failed", e);
  }
  return row ? drillOf(row) : null;
}

/**
 * The issues beside age and last run, with their severity (see HealthStatus). Pure: the admin
 * health and the cheap public one pass the same facts from different reads.
 */
export function healthIssues(facts: {
  scan: Pick<BackupScan, "damaged" | "future" | "oldLeftovers"> & Partial<Pick<BackupScan, "newest">>;
  lastRestorationTest: LastRestorationTest | null;
  lease: RunningLock | null;
  /** OFFSITE_S3_* are set: the newest backup should have a verified off-site copy. */
  offsiteConfigured?: boolean;
  /** The newest restore drill; absent or null: none logged, so none is expected yet. */
  lastDrill?: LastDrill | null;
  now?: Date;
}): HealthIssue[] {
  const issues: HealthIssue[] = [];
  const newest = facts.scan.newest;
  if (facts.offsiteConfigured && newest && !hasVerifiedOffsite(newest.manifest)) {
    issues.push({
      code: "NO_OFFSITE_COPY",
      severity: "amber",
      message: `the newest backup ${newest.name} has no verified off-site copy (see offsite_copy_failed in the activity; the next run copies it)`,
    });
  }
  const { scan, lease, lastRestorationTest: test } = facts;
  const drill = facts.lastDrill ?? null;
  if (drill?.outcome === "failed") {
    // A backup that does not restore as its manifest says is not a backup to count on.
    issues.push({ code: "RESTORE_DRILL_FAILED", severity: "red", message: `the last restore drill (${drill.at}) failed: ${drill.reason ?? "see activity_log"}` });
  } else if (drill?.outcome === "skipped") {
    issues.push({ code: "RESTORE_DRILL_SKIPPED", severity: "amber", message: `the last restore drill (${drill.at}) was skipped: ${drill.reason ?? "see activity_log"}` });
  } else if (drill && facts.now && toTime(facts.now, "now") - toTime(sqliteUtc(drill.at), "lastDrill.at") > DRILL_MISSING_AFTER_HOURS * HOUR_MS) {
    issues.push({ code: "RESTORE_DRILL_MISSING", severity: "amber", message: `no restore drill since ${drill.at} (more than ${DRILL_MISSING_AFTER_HOURS} h): is the cron Worker running it?` });
  }
  if (scan.damaged.length) {
    const d = scan.damaged[0];
    issues.push({ code: "DAMAGED_BACKUP", severity: "red", message: `the newest backup ${d.name} fails verification (${d.reason})` });
  }
  if (test && !test.ok) {
    issues.push({ code: "RESTORATION_TEST_FAILED", severity: "red", message: `the last restoration test (${test.at}) failed` });
  }
  if (lease?.state === "interrupted") {
    // A dead backup run is a failed backup; a dead cleanup only delays trimming.
    issues.push({
      code: "INTERRUPTED_RUN",
      severity: lease.op === "cleanup" ? "amber" : "red",
      message: `a ${lease.op ?? "backup"} run (${lease.owner}, started ${lease.startedAt}) was interrupted; the next run logs and cleans it`,
    });
  }
  if (scan.future.length) {
    issues.push({
      code: "FUTURE_BACKUP",
      severity: "amber",
      message: `${scan.future.length} backup(s) dated in the future (${scan.future[0]}): a clock fault; kept, not counted as newest`,
    });
  }
  if (scan.oldLeftovers.length) {
    issues.push({
      code: "OLD_LEFTOVERS",
      severity: "amber",
      message: `${scan.oldLeftovers.length} leftover(s) of interrupted runs older than a day: is retention running?`,
    });
  }
  return issues;
}

/** The next scheduled run strictly after `now` (at exactly 02:00:00.000 UTC, the next day's). */
export function nextScheduledRun(now: Date): Date {
  const nowMs = toTime(now, "now");
  const today = new Date(nowMs);
  const run = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), SCHEDULE_HOUR_UTC);
  return new Date(run > nowMs ? run : run + DAY_MS);
}

interface RunRow {
  id: number;
  action: string;
  details: string | null;
  created_at: string;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** The newest backup run outcome (manual, CLI or scheduled), or null when none was ever logged. */
export async function lastBackupRun(db: D1Database): Promise<LastRun | null> {
  const placeholders = RUN_ACTIONS.map(() => "?").join(", ");
  let row: RunRow | null;
  try {
    // By id, not created_at: ids are AUTOINCREMENT, so insertion order holds even if a clock steps back.
    row = await db
      .prepare(`SELECT id, action, details, created_at FROM activity_log WHERE action IN (${placeholders}) ORDER BY id DESC LIMIT 1`)
      .bind(...RUN_ACTIONS)
      .first<RunRow>();
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading activity_log failed", e);
  }
  if (!row) return null;
  const ok = SUCCESS_ACTIONS.includes(row.action);
  const run: LastRun = { action: row.action as LastRun["action"], at: row.created_at, ok };
  if (!ok) {
    const details = parseDetails(row.details);
    const d = details && typeof details === "object" ? (details as Record<string, unknown>) : {};
    const reason = str(d.reason) ?? (typeof details === "string" ? details : undefined);
    if (reason !== undefined) run.reason = reason;
    if (str(d.code)) run.code = str(d.code);
    if (str(d.stage)) run.stage = str(d.stage);
  }
  return run;
}

/** The newest restoration test (quarterly, lib/restoration-test) outcome, or null. */
export async function lastRestorationTest(db: D1Database): Promise<LastRestorationTest | null> {
  let row: { action: string; details: string | null; created_at: string } | null;
  try {
    row = await db
      .prepare(
        "SELECT action, details, created_at FROM activity_log WHERE action IN ('restoration_test_completed', 'restoration_test_failed') ORDER BY id DESC LIMIT 1",
      )
      .first();
  } catch (e) {
    throw wrapBindingError("DATABASE_ERROR", "reading activity_log failed", e);
  }
  if (!row) return null;
  const d = parseDetails(row.details) as Record<string, unknown> | null;
  return { ok: row.action === "restoration_test_completed", at: row.created_at, key: str(d?.key) ?? null };
}

/** The D1 facts health needs, read concurrently. */
async function d1Facts(db: D1Database, now: Date) {
  const [lastRun, test, lease, drill] = await Promise.all([lastBackupRun(db), lastRestorationTest(db), readBackupLock(db, now), lastRestoreDrill(db)]);
  return { lastRun, test, lease, drill };
}

export interface HealthOptions {
  db: D1Database;
  bucket: R2Bucket;
  /** The time to assess at; the real clock by default. */
  now?: Date;
  /** A listing already made for the same request (the dashboard lists anyway); saves an R2 list. */
  listing?: BackupListing;
  /** OFFSITE_S3_* are set (lib/env.ts getOffsite): a newest backup without a verified copy is attention. */
  offsiteConfigured?: boolean;
}

/** Health from R2 (what can be restored) and activity_log (how the newest run ended). */
export async function getBackupHealth(opts: HealthOptions): Promise<BackupHealth> {
  const now = opts.now ?? new Date();
  const [listing, facts] = await Promise.all([opts.listing ?? listBackups(opts.bucket), d1Facts(opts.db, now)]);
  return healthOf(listing, facts, now, opts.offsiteConfigured);
}

/**
 * The rule applied to a listing and what D1 said; `d1` null when D1 is unavailable: then there is
 * no last run, test or lease, and the summary says the health comes from R2 alone.
 */
export function healthOf(listing: BackupListing, d1: Awaited<ReturnType<typeof d1Facts>> | null, now: Date, offsiteConfigured = false): BackupHealth {
  const scan = scanListing(listing, now);
  const newest = scan.newest;
  const lastRun = d1?.lastRun ?? null;
  const issues = healthIssues({ scan, lastRestorationTest: d1?.test ?? null, lease: d1?.lease ?? null, lastDrill: d1?.drill ?? null, now, offsiteConfigured });
  const assessment = assessHealth({ newestBackupAt: newest?.manifest.createdAt ?? null, lastRun, issues }, now);
  return {
    status: assessment.status,
    summary: d1 ? assessment.summary : `${assessment.summary} (from R2 alone: the database is unavailable, so the last run is unknown)`,
    issues,
    checkedAt: now.toISOString(),
    lastSuccess: newest
      ? {
          key: newest.key,
          name: newest.name,
          createdAt: newest.manifest.createdAt,
          ageHours: assessment.ageHours ?? 0,
          size: newest.size,
          tables: newest.manifest.tables.length,
          rows: newest.manifest.totalRows,
        }
      : null,
    lastRun,
    lastDrill: d1?.drill ?? null,
    nextScheduledRun: nextScheduledRun(now).toISOString(),
    staleAfterHours: STALE_AFTER_HOURS,
    incompleteCount: listing.incomplete.length,
    backupsCount: listing.backups.length,
    totalSize: listing.backups.reduce((n, b) => n + b.size, 0),
    incompleteSize: listing.incomplete.reduce((n, b) => n + b.size, 0),
  };
}

export interface PublicHealth {
  status: "ok" | "attention" | "stale";
  age_hours: number | null;
}

/**
 * What an unauthenticated status endpoint (an uptime monitor's target) may see: green, amber or
 * red and the newest backup's age, nothing else — no keys, names, sizes, table names or error
 * text, which would tell a stranger about the database. failing and never are reported as
 * "stale" (red): the monitor only needs "something is wrong"; the admin dashboard says what.
 */
export function publicHealth(health: { status: HealthStatus; lastSuccess: Pick<LastSuccess, "ageHours"> | null }): PublicHealth {
  return {
    status: health.status === "ok" || health.status === "attention" ? health.status : "stale",
    age_hours: health.lastSuccess ? Math.round(health.lastSuccess.ageHours * 10) / 10 : null,
  };
}

/**
 * publicHealth for the unauthenticated endpoint, from the newest complete backup alone (one R2
 * listing, usually one manifest read, three small D1 reads): anyone can call it, so it must not
 * read every manifest the way the admin health does. Same rule, same answer as getBackupHealth.
 */
export async function getPublicHealth(opts: { db: D1Database; bucket: R2Bucket; now?: Date; offsiteConfigured?: boolean }): Promise<PublicHealth> {
  const now = opts.now ?? new Date();
  const [scan, { lastRun, test, lease, drill }] = await Promise.all([findNewestBackup(opts.bucket, now), d1Facts(opts.db, now)]);
  const issues = healthIssues({ scan, lastRestorationTest: test, lease, lastDrill: drill, now, offsiteConfigured: opts.offsiteConfigured });
  const a = assessHealth({ newestBackupAt: scan.newest?.manifest.createdAt ?? null, lastRun, issues }, now);
  return publicHealth({ status: a.status, lastSuccess: a.ageHours === null ? null : { ageHours: a.ageHours } });
}

/**
 * getPublicHealth answered from memory for `ttlMs` (one memo per isolate and entry point): an
 * anonymous caller in a loop costs one R2 listing and a few D1 reads per TTL, not per call.
 * Concurrent callers share the read in flight; a failed read is not kept; ttlMs 0 reads every time.
 */
export function publicHealthCache(clock: () => number = Date.now) {
  let memo: { at: number; value: Promise<PublicHealth> } | null = null;
  return (opts: { db: D1Database; bucket: R2Bucket; offsiteConfigured?: boolean }, ttlMs: number): Promise<PublicHealth> => {
    const now = clock();
    if (memo && now - memo.at < ttlMs) return memo.value;
    const entry = { at: now, value: getPublicHealth(opts) };
    memo = ttlMs > 0 ? entry : null;
    entry.value.catch(() => {
      if (memo === entry) memo = null;
    });
    return entry.value;
  };
}
