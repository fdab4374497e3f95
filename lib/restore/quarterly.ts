// The quarterly restoration test (BACKUP_TESTING_SCHEDULE.md) as one command: pick the newest
// complete backup (or a named one), download, verify, restore it into a throw-away local D1, run
// every check, time every step, write the report from docs/backup-tests/test-report-template.md,
// and record the outcome in activity_log. Also the schedule itself: the next test date and the
// reminder that announces it.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { tryLogActivity } from "../backup/activity";
import { BackupError, errorMessage, isBackupError } from "../backup/errors";
import { keysFor, parseBackupName } from "../backup/keys";
import { listBackups } from "../backup/list";
import { quoteText } from "../sql";
import { openLocalPlatform, PROJECT_ROOT } from "../local/platform";
import { cleanToolOutput, wrangler } from "./exec";
import { DATABASE_NAME as DEFAULT_DATABASE } from "../names";
import { formatBytes } from "../backup/units";
import { createReporter, formatMs, type Reporter } from "./progress";
import { runRestore, type RestoreResult } from "./restore";
import { sqliteVersion } from "./sqlite";

// ---------------------------------------------------------------------------------------------
// Schedule

/** Test days: the 15th of the first month of each quarter (month is 1-based). */
export const QUARTERLY_TEST_DAYS: readonly { month: number; day: number }[] = [
  { month: 1, day: 15 },
  { month: 4, day: 15 },
  { month: 7, day: 15 },
  { month: 10, day: 15 },
];

/** The recovery time objective the test measures against. */
export const RTO_OBJECTIVE_SECONDS = 30 * 60;

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Parses YYYY-MM-DD as a UTC date, refusing impossible dates (2027-02-30). */
export function parseDay(s: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!d || d.toISOString().slice(0, 10) !== s) throw new BackupError("INVALID_INPUT", `not a date (YYYY-MM-DD): ${s}`);
  return d;
}

export const isoDay = (d: Date) => d.toISOString().slice(0, 10);

export function quarterOf(d: Date): { year: number; quarter: number; label: string } {
  const year = d.getUTCFullYear();
  const quarter = Math.floor(d.getUTCMonth() / 3) + 1;
  return { year, quarter, label: `${year}-Q${quarter}` };
}

export interface NextTest {
  /** The scheduled test day, YYYY-MM-DD. */
  date: string;
  quarter: string;
  weekday: string;
  /** 0 on the day itself. */
  daysUntil: number;
  isToday: boolean;
  /** The 15th, or the Monday after when it falls on a weekend (the schedule's rule). */
  workingDay: string;
}

/** The next quarterly test on or after `today` (UTC): on a test day itself, that day. */
export function nextTestDate(today: Date | string): NextTest {
  const t = typeof today === "string" ? parseDay(today) : new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()));
  let next: Date | null = null;
  for (let year = t.getUTCFullYear(); !next; year++) {
    for (const { month, day } of QUARTERLY_TEST_DAYS) {
      const candidate = new Date(Date.UTC(year, month - 1, day));
      if (candidate.getTime() >= t.getTime()) {
        next = candidate;
        break;
      }
    }
  }
  const dow = next.getUTCDay();
  const shift = dow === 6 ? 2 : dow === 0 ? 1 : 0;
  const daysUntil = Math.round((next.getTime() - t.getTime()) / 86_400_000);
  return {
    date: isoDay(next),
    quarter: quarterOf(next).label,
    weekday: WEEKDAYS[dow],
    daysUntil,
    isToday: daysUntil === 0,
    workingDay: isoDay(new Date(next.getTime() + shift * 86_400_000)),
  };
}

export function reminderText(next: NextTest): string {
  const when = next.isToday
    ? `today (${next.weekday} ${next.date})`
    : `on ${next.weekday} ${next.date}, in ${next.daysUntil} day${next.daysUntil === 1 ? "" : "s"}`;
  const weekend = next.workingDay !== next.date ? ` It falls on a weekend: test on the next working day, ${next.workingDay}.` : "";
  return (
    `Quarterly backup restoration test (${next.quarter}) is due ${when}.${weekend} ` +
    "Run `bash scripts/test-restoration.sh` (add --remote <backup-name> for production backups), " +
    `commit the report it writes to docs/backup-tests/${next.quarter}-backup-test.md, and follow up any failed check. ` +
    "Procedure: BACKUP_TESTING_SCHEDULE.md."
  );
}

/** POSTs `{ "text": … }` (what Slack-compatible webhooks take). Never throws; never echoes the URL. */
export async function postReminder(
  url: string,
  text: string,
  opts: { timeoutMs?: number } = {},
): Promise<{ ok: boolean; status?: number; error?: string }> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, error: "REMINDER_WEBHOOK_URL is not an absolute URL" };
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") return { ok: false, error: `REMINDER_WEBHOOK_URL must be http(s), not ${target.protocol}` };
  try {
    const res = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text }),
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    await res.body?.cancel().catch(() => {});
    return res.ok ? { ok: true, status: res.status } : { ok: false, status: res.status, error: `${target.host} answered HTTP ${res.status}` };
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    return { ok: false, error: `could not reach ${target.host}: ${errorMessage(e)}${cause ? ` (${cause})` : ""}` };
  }
}

// ---------------------------------------------------------------------------------------------
// The restoration test

export interface RestorationTestOptions {
  /** A backup name or key; default: the newest complete backup (local state only). */
  backup?: string;
  /** Fetch from the real bucket (then the backup must be named: wrangler cannot list a bucket). */
  remote?: boolean;
  /** Local state holding the backups and the source database (default: .wrangler/state). */
  persistTo?: string;
  /** Where the report goes (default: docs/backup-tests). */
  reportDir?: string;
  /** Record the outcome in activity_log (default: on for local, off for remote). */
  logToDb?: boolean;
  /** Temp directory for the download and the throw-away database (default: a new one, removed). */
  workDir?: string;
  /** The run's date (default: now): names the report's quarter. */
  now?: Date;
  reporter?: Reporter;
  tester?: string;
}

export interface RestorationTestResult {
  passed: boolean;
  backupKey: string | null;
  reportFile: string;
  rtoSeconds: number;
  withinObjective: boolean;
  error: { code: string; message: string; check?: string } | null;
  restore: RestoreResult | null;
  logged: string | null;
  logWarning: string | null;
}

async function newestLocalBackup(persistTo: string | undefined): Promise<string> {
  const platform = await openLocalPlatform({ persistTo });
  try {
    const listing = await listBackups(platform.env.DOCUMENTS);
    const newest = listing.backups[0];
    if (!newest) {
      throw new BackupError(
        "NOT_FOUND",
        `no complete backup in the local state${persistTo ? ` ${persistTo}` : ""}` +
          (listing.incomplete.length ? ` (${listing.incomplete.length} incomplete: ${listing.incomplete.map((i) => `${i.name}: ${i.reason}`).join("; ")})` : "") +
          ": make one with npm run backup",
      );
    }
    return newest.name;
  } finally {
    await platform.dispose();
  }
}

function machine(): string {
  const cpus = os.cpus();
  return (
    `${os.hostname()}: ${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model?.trim() ?? "CPU"}, ` +
    `${(os.totalmem() / 1024 ** 3).toFixed(1)} GB RAM`
  );
}

async function tools(): Promise<string> {
  let wranglerVersion = "unknown";
  try {
    wranglerVersion = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "node_modules", "wrangler", "package.json"), "utf8")).version;
  } catch {
    // reported as unknown
  }
  return `Node ${process.version}, wrangler ${wranglerVersion}, sqlite3 ${await sqliteVersion()}`;
}

/** Fills {{NAME}} placeholders; a placeholder without a value is an error (template and code disagree). */
export function renderTemplate(template: string, values: Record<string, string>): string {
  const out = template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (whole, key: string) => (key in values ? values[key] : whole));
  const left = [...out.matchAll(/\{\{([A-Z0-9_]+)\}\}/g)].map((m) => m[1]);
  if (left.length > 0) throw new BackupError("INTERNAL", `report template has placeholders with no value: ${[...new Set(left)].join(", ")}`);
  return out;
}

export const TEMPLATE_FILE = path.join(PROJECT_ROOT, "docs", "backup-tests", "test-report-template.md");

/** docs/backup-tests/YYYY-QN-backup-test.md; a second test in the same quarter gets -2, -3, … */
export function reportPath(dir: string, now: Date): string {
  const base = `${quarterOf(now).label}-backup-test`;
  let file = path.join(dir, `${base}.md`);
  for (let n = 2; fs.existsSync(file); n++) file = path.join(dir, `${base}-${n}.md`);
  return file;
}

const seconds = (ms: number | undefined) => (ms === undefined ? "—" : (ms / 1000).toFixed(1));
const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");

export function reportValues(input: {
  now: Date;
  tester: string;
  environment: string;
  machine: string;
  tools: string;
  backupKey: string | null;
  result: RestoreResult | null;
  reporter: Reporter;
  totalMs: number;
  error: { code: string; message: string; check?: string } | null;
  passed: boolean;
  notes: string[];
}): Record<string, string> {
  const { result, now } = input;
  const b = result?.backup;
  const timing = (step: string) => input.reporter.timings.find((t) => t.step === step)?.ms;
  const rto = input.totalMs / 1000;
  const created = b?.createdAt ? new Date(b.createdAt) : null;
  const ageHours = created ? (now.getTime() - created.getTime()) / 3_600_000 : null;

  const tableRows = result?.checks
    ? result.checks.tables
        .map((t) => `| ${cell(t.name)} | ${t.expected ?? "—"} | ${t.actual ?? "missing"} | ${t.ok ? "✅" : "❌"} |`)
        .join("\n")
    : b && b.tables.length > 0
      ? b.tables.map((t) => `| ${cell(t.name)} | ${t.rows} | not restored | ❌ |`).join("\n")
      : "| (no tables: the test stopped before the restore) | — | — | ❌ |";
  const restoredRows = result?.checks ? result.checks.tables.reduce((n, t) => n + (t.actual ?? 0), 0) : null;

  const checks: string[] = [];
  for (const c of result?.verification ?? []) checks.push(`- ${c.ok ? "✅" : "❌"} verify ${c.check}: ${c.detail}`);
  for (const c of result?.checks?.checks ?? []) checks.push(`- ${c.ok ? "✅" : "❌"} ${c.check}: ${c.detail}`);
  if (input.error) checks.push(`- ❌ ${input.error.check ?? input.error.code}: ${input.error.message}`);
  if (checks.length === 0) checks.push("- (none ran)");

  return {
    QUARTER: quarterOf(now).label,
    DATE: `${now.toISOString().slice(0, 16).replace("T", " ")} UTC`,
    TESTER: input.tester,
    ENVIRONMENT: input.environment,
    MACHINE: input.machine,
    TOOLS: input.tools,
    BACKUP_KEY: input.backupKey ?? "(none)",
    BACKUP_CREATED_AT: b?.createdAt ?? "—",
    BACKUP_AGE: ageHours === null ? "—" : `${ageHours.toFixed(1)} h (objective ≤ 24 h${ageHours > 24 ? ": OVER" : ""})`,
    BACKUP_SIZE: b?.objectSize != null ? `${b.objectSize} bytes (${formatBytes(b.objectSize)}) gzip, ${b.sqlSize} bytes of SQL` : "—",
    BACKUP_SHA256: b?.objectSha256 ?? "—",
    LATEST_MIGRATION: b?.latestMigration ?? "—",
    RESULT: input.passed ? "✅ PASSED" : "❌ FAILED",
    T_PICK: seconds(timing("pick backup")),
    T_DOWNLOAD: seconds(timing("download")),
    T_VERIFY: seconds(timing("verify")),
    T_RESTORE: seconds(timing("restore")),
    T_CHECKS: seconds(timing("checks")),
    T_TOTAL: rto.toFixed(1),
    RTO_VERDICT: rto <= RTO_OBJECTIVE_SECONDS ? `within the objective (${formatMs(input.totalMs)})` : `OVER the objective (${formatMs(input.totalMs)})`,
    TABLE_ROWS: tableRows,
    TOTAL_ROWS_MANIFEST: b?.totalRows != null ? String(b.totalRows) : "—",
    TOTAL_ROWS_RESTORED: restoredRows === null ? "—" : String(restoredRows),
    CHECKS: checks.join("\n"),
    COMMAND: result?.plan?.command ? `\`${result.plan.command}\`` : "—",
    NOTES: input.notes.length ? input.notes.map((n) => `- ${n}`).join("\n") : "- none",
  };
}

async function logToRemote(action: string, key: string | null, details: Record<string, unknown>): Promise<void> {
  const sql =
    "INSERT INTO activity_log (user_id, action, entity_type, entity_id, details) VALUES " +
    `(NULL, ${quoteText(action)}, 'backup', ${key ? quoteText(key) : "NULL"}, ${quoteText(JSON.stringify(details))})`;
  const res = await wrangler(["d1", "execute", DEFAULT_DATABASE, "--remote", "--command", sql, "--yes"]);
  if (res.code !== 0) throw new Error(cleanToolOutput(res.stderr || res.stdout));
}

export async function runRestorationTest(opts: RestorationTestOptions = {}): Promise<RestorationTestResult> {
  // Usage errors stop here, before a report is written: a report records a test, not a typo.
  if (opts.remote && !opts.backup) {
    throw new BackupError(
      "INVALID_INPUT",
      "name the backup to test with --remote (wrangler cannot list a bucket): take the first key of GET /api/admin/backup",
    );
  }
  if (opts.backup && !parseBackupName(opts.backup)) {
    throw new BackupError("INVALID_INPUT", `"${opts.backup}" is not a backup name: expected database-YYYY-MM-DD-HH-MM-SS or its key`);
  }
  const now = opts.now ?? new Date();
  const reporter = opts.reporter ?? createReporter();
  const started = Date.now();
  const ownWorkDir = !opts.workDir;
  const workDir = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "d1-restoration-test-"));
  const reportDir = path.resolve(opts.reportDir ?? path.join(PROJECT_ROOT, "docs", "backup-tests"));
  const logToDb = opts.logToDb ?? !opts.remote;
  const notes: string[] = [];
  let backupKey: string | null = null;
  let result: RestoreResult | null = null;
  let error: RestorationTestResult["error"] = null;

  try {
    const name = await reporter.step("pick backup", async () => opts.backup ?? newestLocalBackup(opts.persistTo));
    const parsed = parseBackupName(name);
    backupKey = parsed ? keysFor(parsed).object : name; // a bad name: runRestore says what is wrong
    const scratch = path.join(workDir, "throwaway-d1");
    fs.rmSync(scratch, { recursive: true, force: true });
    result = await runRestore({
      source: opts.remote ? { kind: "remote", name } : { kind: "local", name, persistTo: opts.persistTo },
      target: { kind: "d1", database: DEFAULT_DATABASE, remote: false, persistTo: scratch },
      tempRoot: workDir,
      reporter,
    });
    backupKey = result.backup.key;
    notes.push(...result.warnings);
    notes.push(`restored into a throw-away local D1 (${scratch}), deleted after the test`);
  } catch (e) {
    error = isBackupError(e)
      ? { code: e.code, message: e.message, check: typeof e.details?.check === "string" ? e.details.check : undefined }
      : { code: "INTERNAL", message: errorMessage(e) };
  }

  const totalMs = Date.now() - started;
  const passed = !error && !!result?.ok;
  if (!passed && !error) notes.push("one or more checks failed: treat as an incident (BACKUP_TESTING_SCHEDULE.md → Escalation)");
  if (error) notes.push(`the test stopped: ${error.message}`);
  const rtoSeconds = Math.round(totalMs / 100) / 10;
  const withinObjective = rtoSeconds <= RTO_OBJECTIVE_SECONDS;
  if (!withinObjective) notes.push(`RTO ${rtoSeconds} s is over the ${RTO_OBJECTIVE_SECONDS} s objective: note the slow step and open an issue`);

  // The template's own comment (for whoever edits it) stays out of the reports.
  const template = fs.readFileSync(TEMPLATE_FILE, "utf8").replace(/<!--[\s\S]*?-->\n*/g, "");
  const values = reportValues({
    now,
    tester: opts.tester ?? process.env.RESTORE_TESTER ?? safeUser(),
    environment: opts.remote
      ? "production backup (remote R2) → throw-away local D1"
      : `local state (${opts.persistTo ? path.resolve(opts.persistTo) : ".wrangler/state"}) → throw-away local D1`,
    machine: machine(),
    tools: await tools(),
    backupKey,
    result,
    reporter,
    totalMs,
    error,
    passed,
    notes,
  });
  fs.mkdirSync(reportDir, { recursive: true });
  const reportFile = reportPath(reportDir, now);
  fs.writeFileSync(reportFile, renderTemplate(template, values));

  let logged: string | null = null;
  let logWarning: string | null = null;
  if (logToDb) {
    const action = passed ? "restoration_test_completed" : "restoration_test_failed";
    const details = {
      key: backupKey,
      rto_seconds: rtoSeconds,
      within_objective: withinObjective,
      checks: passed ? "passed" : "failed",
      failed: [
        ...(result?.checks?.checks.filter((c) => !c.ok).map((c) => c.check) ?? []),
        ...(error ? [error.check ?? error.code] : []),
      ],
      reason: error?.message,
      rows: result?.backup.totalRows ?? null,
      report: reportFile.startsWith(PROJECT_ROOT + path.sep) ? path.relative(PROJECT_ROOT, reportFile) : reportFile,
    };
    try {
      if (opts.remote) await logToRemote(action, backupKey, details);
      else {
        const platform = await openLocalPlatform({ persistTo: opts.persistTo });
        try {
          logWarning = await tryLogActivity(platform.env.DB, { action, entityId: backupKey, details });
        } finally {
          await platform.dispose();
        }
      }
      if (!logWarning) logged = action;
    } catch (e) {
      logWarning = `could not write ${action} to activity_log: ${errorMessage(e)}`;
    }
  }
  if (ownWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  return { passed, backupKey, reportFile, rtoSeconds, withinObjective, error, restore: result, logged, logWarning };
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return "unknown";
  }
}
