// The restoration test's report: the values for docs/backup-tests/test-report-template.md, filled
// in from the restore result and the step timings, and where the report file goes.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BackupError, formatBytes } from "../backup";
import type { LastDrill } from "../monitor";
import { PROJECT_ROOT } from "../local";
import { formatMs, sqliteVersion, type Reporter, type RestoreResult } from "../restore";
import { quarterOf } from "./schedule";

/** The recovery time objective the test measures against. */
export const RTO_OBJECTIVE_SECONDS = 30 * 60;

/** The machine the test ran on, for the report (restore times depend on it). */
export function machine(): string {
  const cpus = os.cpus();
  return (
    `${os.hostname()}: ${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model?.trim() ?? "CPU"}, ` +
    `${(os.totalmem() / 1024 ** 3).toFixed(1)} GB RAM`
  );
}

/** The tool versions the restore ran with, for the report. */
export async function tools(): Promise<string> {
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

const DAY_MS = 24 * 60 * 60 * 1000;

/** The report's drills section: a count per outcome and one table row per drill of the last 90 days. */
export function drillLines(source: { drills: LastDrill[] } | { error: string }, now: Date): string {
  if ("error" in source) return `The nightly restore drills could not be read from activity_log: ${cell(source.error)}`;
  const at = (d: LastDrill) => Date.parse(/Z$/.test(d.at) ? d.at : `${d.at.replace(" ", "T")}Z`);
  const recent = source.drills.filter((d) => now.getTime() - at(d) <= 90 * DAY_MS);
  if (recent.length === 0) return "No nightly restore drill in the last 90 days (is RESTORE_DRILL_DB configured? BACKUP_SETUP.md).";
  const count = (o: LastDrill["outcome"]) => recent.filter((d) => d.outcome === o).length;
  const rtos = recent.filter((d) => d.replayMs !== undefined).map((d) => d.replayMs!);
  const head =
    `${recent.length} drills: ${count("completed")} passed, ${count("failed")} failed, ${count("skipped")} skipped` +
    (rtos.length ? `; replay time ${(Math.min(...rtos) / 1000).toFixed(1)}–${(Math.max(...rtos) / 1000).toFixed(1)} s` : "") +
    ".";
  const rows = recent.map(
    (d) =>
      `| ${d.at} | ${cell(d.key ?? "—")} | ${d.outcome === "completed" ? "✅ passed" : d.outcome === "failed" ? "❌ failed" : "⚠️ skipped"} | ${d.replayMs !== undefined ? (d.replayMs / 1000).toFixed(1) : "—"} | ${cell(d.reason ?? "")} |`,
  );
  return [head, "", "| When (UTC) | Backup | Result | Replay (s) | Why |", "| --- | --- | --- | ---: | --- |", ...rows].join("\n");
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
  /** The DRILLS section (drillLines); absent: none read. */
  drills?: string;
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
    DRILLS: input.drills ?? "Not read.",
  };
}
