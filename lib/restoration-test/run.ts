// The quarterly restoration test (BACKUP_TESTING_SCHEDULE.md) as one command: pick the newest
// complete backup (or a named one), download, verify, restore it into a throw-away local D1, run
// every check, time every step, write the report (report.ts) and record the outcome in activity_log.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BackupError, errorMessage, isBackupError, keysFor, listBackups, parseBackupName, tryLogActivity, type VerifyKey } from "../backup";
import { openLocalPlatform, PROJECT_ROOT } from "../local";
import { restoreDrills, type LastDrill } from "../monitor";
import { DATABASE_NAME } from "../names";
import { cleanToolOutput, createReporter, runRestore, wrangler, type AgeIdentities, type Reporter, type RestoreResult } from "../restore";
import { quoteText } from "../sql";
import { drillLines, machine, renderTemplate, reportPath, reportValues, RTO_OBJECTIVE_SECONDS, TEMPLATE_FILE, tools } from "./report";

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
  /** BACKUP_VERIFY_KEY, parsed by the entry point: the test proves the backup is authentic too. */
  verifyKeys: VerifyKey[];
  /** Test a backup whose signature does not verify (the report and the restore say so). */
  allowUnsigned?: boolean;
  /** AGE_IDENTITY_FILE, loaded by the entry point: decrypts an encrypted backup. */
  identities?: AgeIdentities | null;
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

const DRILL_SQL =
  "SELECT action, entity_id, details, created_at FROM activity_log WHERE action IN ('restore_drill_completed', 'restore_drill_failed', 'restore_drill_skipped') ORDER BY id DESC LIMIT 400";

/** The nightly restore drills activity_log holds (newest first), from the portal's database the test reads; null when unreadable. */
async function readDrills(remote: boolean, persistTo: string | undefined): Promise<{ drills: LastDrill[] } | { error: string }> {
  try {
    if (!remote) {
      const platform = await openLocalPlatform({ persistTo });
      try {
        return { drills: await restoreDrills(platform.env.DB) };
      } finally {
        await platform.dispose();
      }
    }
    const res = await wrangler(["d1", "execute", DATABASE_NAME, "--remote", "--json", "--command", DRILL_SQL]);
    if (res.code !== 0) throw new Error(cleanToolOutput(res.stderr || res.stdout));
    type Row = { action: string; entity_id: string | null; details: string | null; created_at: string };
    const rows = (JSON.parse(res.stdout) as { results: Row[] }[])[0]?.results ?? [];
    return { drills: rows.map((r) => ({ outcome: r.action.slice("restore_drill_".length) as LastDrill["outcome"], at: r.created_at, key: r.entity_id, ...drillDetails(r.details) })) };
  } catch (e) {
    return { error: errorMessage(e) };
  }
}

function drillDetails(text: string | null): Pick<LastDrill, "reason" | "replayMs"> {
  try {
    const d = JSON.parse(text ?? "{}") as Record<string, unknown>;
    return { ...(typeof d.reason === "string" ? { reason: d.reason } : {}), ...(typeof d.replay_ms === "number" ? { replayMs: d.replay_ms } : {}) };
  } catch {
    return {};
  }
}

async function logToRemote(action: string, key: string | null, details: Record<string, unknown>): Promise<void> {
  const sql =
    "INSERT INTO activity_log (user_id, action, entity_type, entity_id, details) VALUES " +
    `(NULL, ${quoteText(action)}, 'backup', ${key ? quoteText(key) : "NULL"}, ${quoteText(JSON.stringify(details))})`;
  const res = await wrangler(["d1", "execute", DATABASE_NAME, "--remote", "--command", sql, "--yes"]);
  if (res.code !== 0) throw new Error(cleanToolOutput(res.stderr || res.stdout));
}

export async function runRestorationTest(opts: RestorationTestOptions): Promise<RestorationTestResult> {
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
      target: { kind: "d1", database: DATABASE_NAME, remote: false, persistTo: scratch },
      tempRoot: workDir,
      reporter,
      verifyKeys: opts.verifyKeys,
      allowUnsigned: opts.allowUnsigned,
      identities: opts.identities,
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

  // The nightly drills since the last quarter, beside this run: the test is the deep check, the drills the daily one.
  const drills = await readDrills(!!opts.remote, opts.persistTo);

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
    drills: drillLines(drills, now),
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
