// The restore, safe by default (like `litestream restore`): fetch, verify against the manifest,
// and only then look at the target. An empty target is restored; a non-empty one is refused with
// a dry run of what would happen unless --force; --dry-run never changes anything; a remote target
// needs a typed confirmation (or --yes). After a restore every check runs and the timings of each
// step are kept (the recovery time). The CLI (scripts/restore.ts) only parses arguments.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { activityInsertSql, BackupError, errorMessage, formatBytes, type BackupAction, type Manifest, type VerifyKey } from "../backup";
import { DATABASE_NAME } from "../names";
import { runChecks, type CheckReport } from "./checks";
import { makeWorkDir, release, sweepRestoring, sweepWorkDirs, type Leftover } from "./cleanup";
import { fetchBackup, type BackupSource } from "./fetch";
import type { AgeIdentities } from "./identity";
import { createReporter, type Reporter, type StepTiming } from "./progress";
import { comparePutBack, snapshotPutBack, writePutBack, type PutBackComparison, type PutBackDifference, type PutBackMode, type PutBackResult, type TriggerDef } from "./put-back";
import { parseWheres } from "./selection";
import { sqliteApplyFile, sqliteQuery } from "./sqlite";
import { dropAllSql, openTarget, timeTravelBookmark, type Target, type TargetSpec, type TargetState } from "./target";
import { verifyBackup, type VerificationCheck, type VerifiedBackup } from "./verify";

export interface RestoreOptions {
  source: BackupSource;
  /** Where to restore (a full restore needs one; a put-back defaults to the local tech-support-db). */
  target?: TargetSpec;
  /** Overwrite a non-empty target (a SQLite file is replaced; a D1 has its user objects dropped first). */
  force?: boolean;
  /** Verify and show the plan; change nothing. */
  dryRun?: boolean;
  /** Skip the typed confirmation of remote changes. */
  yes?: boolean;
  /** Put back selected rows instead of restoring everything. */
  selective?: {
    tables: string[];
    /** "table:expr" per table, or one bare expression with exactly one table. */
    where?: string | string[];
    /** Also every row that referenced the selected ones (foreign keys, recursively); SET NULL links are set back. */
    cascade?: boolean;
    /** ignore (default): live rows keep their values; replace: the backup's values win. */
    mode?: PutBackMode;
    /** The put-back SQL file (default: put-back-<backup>.sql in the current directory). */
    out?: string;
    /** Apply the file to the target (otherwise it is only written). */
    apply?: boolean;
    maxStatementBytes?: number;
  };
  /** Also keep the verified plain SQL here. */
  keepSql?: string;
  /** Parent directory of the temporary working directory (default: the system's). */
  tempRoot?: string;
  /** Public keys (BACKUP_VERIFY_KEY / --verify-key), parsed by the entry point. */
  verifyKeys: VerifyKey[];
  /** age identities for an encrypted backup (--identity / AGE_IDENTITY_FILE), loaded by the entry point. */
  identities?: AgeIdentities | null;
  /** Restore a backup whose signature is missing or does not verify (printed loudly and logged). */
  allowUnsigned?: boolean;
  /** Who is restoring, for activity_log (default: the OS user). */
  actor?: string;
  reporter?: Reporter;
  /** Asks a person to type something (remote confirmation); without it remote needs --yes. */
  ask?: (question: string) => Promise<string>;
}

export interface BackupInfo {
  name: string | null;
  key: string;
  origin: string;
  createdAt: string | null;
  objectSize: number | null;
  objectSha256: string | null;
  sqlSize: number;
  latestMigration: string | null;
  totalRows: number | null;
  tables: { name: string; rows: number }[];
  /** "valid" (with keyId), or why not; `allowed`: restored anyway with --allow-unsigned. */
  signature: { state: string; keyId: string | null; allowed: boolean };
}

export interface TargetInfo {
  label: string;
  kind: "sqlite" | "d1-local" | "d1-remote";
  /** Nothing in it (a SQLite target: the file does not exist). */
  empty: boolean;
  /** What is in it now: "table clients", "view v_open_tickets", … */
  contents: string[];
}

export interface RestorePlan {
  /** The exact command that does the restore (or applies the put-back file). */
  command: string;
  /** What --force removes or replaces first. */
  replaces: string[];
  notes: string[];
}

export interface RestoreResult {
  ok: boolean;
  mode: "restore" | "dry-run" | "put-back";
  backup: BackupInfo;
  verification: VerificationCheck[];
  target: TargetInfo | null;
  plan: RestorePlan | null;
  checks: CheckReport | null;
  putBack:
    | (PutBackResult & {
        applied: boolean;
        comparison: PutBackComparison[] | null;
        /** Cells (or rows) that differ from the backup after --apply: each one fails the put-back. */
        failures: PutBackDifference[];
        /** Differences the mode keeps on purpose (live values in --mode ignore, re-set links). */
        kept: PutBackDifference[];
      })
    | null;
  /** Time Travel bookmark taken before overwriting a remote database. */
  bookmark: string | null;
  timings: StepTiming[];
  totalMs: number;
  warnings: string[];
  /** The activity_log rows written into the target (empty: not the portal database, or nothing changed). */
  audit: BackupAction[];
}

/** What differs between the outcomes of a run; the rest (backup, verification, timings) is common. */
type Outcome = Pick<RestoreResult, "ok" | "mode" | "target" | "plan" | "checks" | "putBack"> & { bookmark?: string | null };

function backupInfo(v: VerifiedBackup): BackupInfo {
  const m: Manifest | null = v.manifest;
  return {
    name: v.name,
    key: v.key,
    origin: v.origin,
    createdAt: m?.createdAt ?? null,
    objectSize: v.object?.size ?? null,
    objectSha256: v.object?.sha256 ?? null,
    sqlSize: v.sql.size,
    latestMigration: m?.schema.latestMigration ?? null,
    totalRows: m?.totalRows ?? null,
    tables: m?.tables ?? [],
    signature: { state: v.signature.state, keyId: "keyId" in v.signature ? v.signature.keyId : null, allowed: v.signature.allowed },
  };
}

function targetKind(spec: TargetSpec): TargetInfo["kind"] {
  return spec.kind === "sqlite" ? "sqlite" : spec.remote ? "d1-remote" : "d1-local";
}

function targetInfo(target: Target, state: TargetState): TargetInfo {
  const kind = targetKind(target.spec);
  // A SQLite target must not exist at all (like litestream's output file); a D1 counts as empty
  // with no user table, view or trigger (D1's own _cf_* tables do not count).
  const empty = kind === "sqlite" ? !state.exists : state.objects.length === 0;
  const contents = state.objects.map((o) => `${o.type} ${o.name}`);
  if (kind === "sqlite" && state.exists && contents.length === 0) contents.push("file (empty)");
  return { label: target.label, kind, empty, contents };
}

function validate(opts: RestoreOptions): void {
  const sel = opts.selective;
  if (!sel && !opts.target) {
    throw new BackupError("INVALID_INPUT", "say where to restore: --to-sqlite FILE, --persist-to DIR or --database NAME (--local|--remote)");
  }
  if (sel) {
    if (sel.tables.length === 0) throw new BackupError("INVALID_INPUT", "--where, --cascade, --mode and --out need at least one --table");
    if (opts.force) throw new BackupError("INVALID_INPUT", "--force is for full restores; a put-back never deletes (for backup values over live ones: --mode replace)");
    if (sel.mode !== undefined && sel.mode !== "ignore" && sel.mode !== "replace") {
      throw new BackupError("INVALID_INPUT", `--mode is ignore or replace (got ${String(sel.mode)})`);
    }
    parseWheres(sel.tables, wheresOf(sel.where));
  }
  if (opts.target?.kind === "d1" && opts.target.remote && opts.target.persistTo) {
    throw new BackupError("INVALID_INPUT", "--persist-to is a local state directory; it cannot be combined with --remote");
  }
}

async function confirmRemote(opts: RestoreOptions, database: string, what: string): Promise<void> {
  if (opts.yes) return;
  if (!opts.ask) {
    throw new BackupError("INVALID_INPUT", `${what} the remote database ${database}: confirm by running interactively, or pass --yes`);
  }
  const answer = (await opts.ask(`${what} the REMOTE database ${database}. Type its name to continue: `)).trim();
  if (answer !== database) throw new BackupError("INVALID_INPUT", `not confirmed (typed "${answer}", expected "${database}"): nothing was changed`);
}

/** The actor for activity_log: --actor, else the OS user (a CLI has no Clerk session). */
function actorOf(opts: RestoreOptions): string {
  if (opts.actor) return opts.actor;
  try {
    return `os:${os.userInfo().username}`;
  } catch {
    return "os:unknown";
  }
}

/**
 * Audit rows go into the target when it is the portal's database (a D1 named like it, with its
 * activity_log), so the admins' trail shows restores next to backups. A SQLite file is not the
 * portal. Never fails the restore: a row that cannot be written becomes a warning.
 */
async function audit(
  target: Target,
  rows: { action: BackupAction; details: Record<string, unknown> }[],
  ctx: { opts: RestoreOptions; verified: VerifiedBackup; warnings: string[]; written: BackupAction[] },
): Promise<void> {
  const spec = target.spec;
  if (spec.kind !== "d1" || spec.database !== DATABASE_NAME || rows.length === 0) return;
  try {
    const has = await target.query<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'activity_log'");
    if (!has[0]?.n) return;
    const actor = actorOf(ctx.opts);
    const sig = ctx.verified.signature;
    const common = {
      actor,
      backup: ctx.verified.name,
      key: ctx.verified.key,
      target: target.label,
      signature: sig.state === "valid" ? `valid:${sig.keyId}` : sig.state,
    };
    const sql = rows
      .map((r) => activityInsertSql({ action: r.action, userId: actor, entityId: ctx.verified.key, details: { ...common, ...r.details } }))
      .join("\n");
    await target.execute(sql);
    ctx.written.push(...rows.map((r) => r.action));
  } catch (e) {
    ctx.warnings.push(`could not write ${rows.map((r) => r.action).join(", ")} to activity_log of ${target.label}: ${errorMessage(e)}`);
  }
}

function reportLeftovers(found: Leftover[], reporter: Reporter, warnings: string[]): void {
  for (const l of found) {
    const line = `removed the leftovers of a killed restore (pid ${l.pid}, no longer running): ${l.path} (${formatBytes(l.bytes)})`;
    reporter.warn(line);
    warnings.push(line);
  }
}

export async function runRestore(opts: RestoreOptions): Promise<RestoreResult> {
  validate(opts);
  const reporter = opts.reporter ?? createReporter();
  const started = Date.now();
  const warnings: string[] = [];
  const root = opts.tempRoot ?? os.tmpdir();
  // A run killed with SIGKILL (or a crash) could not clean up: its plaintext goes now.
  reportLeftovers(sweepWorkDirs(root), reporter, warnings);
  const workDir = makeWorkDir(root);
  const written: BackupAction[] = [];
  try {
    const fetched = await reporter.step("download", () => fetchBackup(opts.source, workDir, reporter));
    const verified = await reporter.step("verify", () =>
      verifyBackup(fetched, workDir, reporter, { verifyKeys: opts.verifyKeys, allowUnsigned: opts.allowUnsigned, age: opts.identities }),
    );
    if (!verified.manifest) warnings.push("restored WITHOUT a manifest: the backup's integrity and row counts were not verified");
    if (verified.signature.allowed) warnings.push(`UNVERIFIED SIGNATURE (${verified.signature.state}): restored because of --allow-unsigned`);
    if (opts.keepSql) fs.copyFileSync(verified.sqlFile, path.resolve(opts.keepSql));
    const base = { backup: backupInfo(verified), verification: verified.checks, bookmark: null, warnings, audit: written };
    // Built in one place so every outcome (dry run, refusal, restore, put-back) has the same shape.
    const result = (outcome: Outcome): RestoreResult => ({ ...base, ...outcome, timings: reporter.timings, totalMs: Date.now() - started });
    const ctx = { opts, verified, warnings, written };

    if (opts.selective) return await putBack(opts, verified, workDir, reporter, warnings, result, ctx);

    const target = openTarget(opts.target!);
    if (opts.target!.kind === "sqlite") reportLeftovers(sweepRestoring(path.resolve(opts.target!.file)), reporter, warnings);
    const state = await reporter.step("inspect target", () => target.inspect());
    const info = targetInfo(target, state);
    const replacing = !info.empty;
    const plan: RestorePlan = {
      command: target.restoreCommand(opts.keepSql ? path.resolve(opts.keepSql) : verified.sqlFile),
      replaces: replacing
        ? info.kind === "sqlite"
          ? [`${target.label} is replaced as a whole (built beside it, checked, then renamed over it)`]
          : dropAllSql(state).trim().split("\n")
        : [],
      notes: [],
    };
    if (!opts.keepSql) plan.notes.push("the SQL file in the command is a verified temporary copy; keep one with --keep-sql FILE");
    if (replacing && info.kind !== "sqlite") {
      plan.notes.push(
        "--force first rehearses the restore in a scratch local D1 and runs the checks there; only then are every user table, " +
          "view and trigger dropped (children before parents) in the same file as the dump, imported as one transaction",
      );
    }
    if (info.kind === "sqlite") {
      plan.notes.push("sqlite3 builds the database beside the target (<file>.restoring-<pid>) in one transaction; the checks run on it, and only then is it renamed over the target");
    }
    if (info.kind === "d1-remote") plan.notes.push("remote: asks you to type the database name (or --yes); with --force a Time Travel bookmark is taken first");

    if (opts.dryRun) {
      return result({ ok: true, mode: "dry-run", target: info, plan, checks: null, putBack: null });
    }
    if (replacing && !opts.force) {
      throw new BackupError(
        "TARGET_NOT_EMPTY",
        `${target.label} is not empty (${info.contents.slice(0, 5).join(", ")}${info.contents.length > 5 ? `, … ${info.contents.length} objects` : ""}): ` +
          "nothing was changed. Restore into a new, empty target, or re-run with --force to overwrite it",
        {
          details: {
            dryRun: result({ ok: false, mode: "dry-run", target: info, plan, checks: null, putBack: null }),
          },
        },
      );
    }

    let bookmark: string | null = null;
    const spec = opts.target!;
    if (spec.kind === "d1" && spec.remote) {
      const database = spec.database;
      await confirmRemote(opts, database, replacing ? "This DROPS everything in and restores over" : "This restores into");
      if (replacing) {
        // The only way back from overwriting a remote database: refuse to go on without one.
        bookmark = await reporter.step("time travel bookmark", () => timeTravelBookmark(database));
        reporter.info(`  bookmark ${bookmark}: undo with npx wrangler d1 time-travel restore ${database} --bookmark=${bookmark}`);
      }
    }

    const staged = await reporter.step("restore", () => target.restore(verified.sqlFile, { replace: replacing ? state : null, workDir, reporter }));
    let checks = await reporter.step("checks", () => runChecks(staged.query, verified.manifest));
    const rows = checks.tables.reduce((n, t) => n + (t.actual ?? 0), 0);
    const outcome = (ok: boolean, c: CheckReport) => result({ ok, mode: "restore", target: info, plan, checks: c, putBack: null, bookmark });
    if (!checks.ok) {
      staged.discard();
      if (staged.commitImports || info.kind === "sqlite") {
        warnings.push(`the new database failed its checks in ${staged.where}: ${target.label} was NOT changed`);
      } else {
        // Imported straight into an empty target: nothing was lost, but the target now holds it.
        warnings.push(`the restored database failed its checks; ${target.label} was empty before and now holds this failed restore`);
        await audit(target, [{ action: "restore_failed", details: { mode: "restore", force: false, rows, reason: failedChecks(checks) } }], ctx);
      }
      return outcome(false, checks);
    }
    if (staged.commitImports) {
      await reporter.step("replace", () => staged.commit(reporter));
      checks = await reporter.step("checks after replace", () => runChecks(target.query, verified.manifest));
    } else {
      await staged.commit(reporter);
    }
    const rtoMs = Date.now() - started;
    const details = { mode: "restore", force: replacing, rows, tables: checks.tables.length, rto_ms: rtoMs, bookmark };
    if (!checks.ok) {
      await audit(target, [{ action: "restore_failed", details: { ...details, reason: failedChecks(checks) } }], ctx);
    } else {
      await audit(
        target,
        [
          { action: "restore_completed", details },
          ...(replacing ? [{ action: "restore_forced" as const, details: { ...details, replaced: info.contents.length } }] : []),
          ...(verified.signature.allowed ? [{ action: "restore_unsigned_allowed" as const, details }] : []),
        ],
        ctx,
      );
    }
    return outcome(checks.ok, checks);
  } finally {
    release(workDir);
  }
}

function failedChecks(c: CheckReport): string {
  return c.checks
    .filter((x) => !x.ok)
    .map((x) => `${x.check}: ${x.detail}`)
    .join("; ")
    .slice(0, 500);
}

const wheresOf = (w: string | string[] | undefined): string[] => (w === undefined ? [] : Array.isArray(w) ? w : [w]).filter((x) => x.trim() !== "");

const TRIGGERS_SQL = "SELECT name, tbl_name AS \"table\", sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL ORDER BY rowid";
const sameTriggers = (a: TriggerDef[], b: TriggerDef[]) => JSON.stringify(a) === JSON.stringify(b);

async function putBack(
  opts: RestoreOptions,
  verified: VerifiedBackup,
  workDir: string,
  reporter: Reporter,
  warnings: string[],
  result: (outcome: Outcome) => RestoreResult,
  ctx: Parameters<typeof audit>[2],
): Promise<RestoreResult> {
  const started = Date.now();
  const sel = opts.selective!;
  const spec: TargetSpec = opts.target ?? { kind: "d1", database: DATABASE_NAME, remote: false };
  const target = openTarget(spec);
  if (sel.apply && !opts.dryRun && spec.kind === "sqlite" && !fs.existsSync(path.resolve(spec.file))) {
    throw new BackupError("NOT_FOUND", `${target.label} does not exist: nothing to put rows back into`);
  }
  const scratch = path.join(workDir, "scratch.sqlite");
  await reporter.step("restore scratch copy", () =>
    sqliteApplyFile(scratch, verified.sqlFile, (p) => reporter.progress(`scratch copy: ${p.table ?? ""} ~${p.rows} rows`)),
  );
  const out = path.resolve(sel.out ?? `put-back-${verified.name ?? "backup"}.sql`);
  const applyCommand = target.applyCommand(out);
  const mode = sel.mode ?? "ignore";
  const apply = !!sel.apply && !opts.dryRun;
  // The triggers the file re-creates are the target's own (exact SQL); only when the target cannot
  // be read (writing a file for later) the backup's, with a warning. Re-read before applying.
  const backupTriggers = await sqliteQuery<TriggerDef>(scratch, TRIGGERS_SQL);
  let triggers = backupTriggers;
  const unreadable = spec.kind === "d1" ? !spec.remote && !target.localFile() : !fs.existsSync(target.localFile()!);
  try {
    if (unreadable) throw new BackupError("NOT_FOUND", `${target.label} does not exist${apply ? ": nothing to put rows back into" : ""}`);
    triggers = await target.query<TriggerDef>(TRIGGERS_SQL);
  } catch (e) {
    if (apply) throw e;
    warnings.push(
      `could not read the triggers of ${target.label} (${errorMessage(e)}): the file re-creates the backup's; ` +
        "if the target's differ, applying it changes them (with --apply they are read from the target)",
    );
  }
  const written = await reporter.step("write put-back file", () =>
    writePutBack(
      scratch,
      verified.manifest?.tables.map((t) => t.name) ?? [],
      {
        tables: sel.tables,
        wheres: parseWheres(sel.tables, wheresOf(sel.where)),
        cascade: !!sel.cascade,
        mode,
        triggers,
        out,
        maxStatementBytes: sel.maxStatementBytes,
        backupName: verified.name,
        backupCreatedAt: verified.manifest?.createdAt ?? null,
        applyCommand,
      },
      reporter,
    ),
  );
  warnings.push(...written.warnings);
  for (const tr of written.triggers) {
    const b = backupTriggers.find((x) => x.name === tr.name);
    if (triggers !== backupTriggers && (!b || b.sql !== tr.sql)) warnings.push(`trigger ${tr.name} of the target differs from the backup's: the target's is re-created`);
  }
  const info: TargetInfo = { label: target.label, kind: targetKind(spec), empty: false, contents: [] };
  const plan: RestorePlan = {
    command: applyCommand,
    replaces: [],
    notes: [`${written.rows} rows and ${written.links.reduce((n, l) => n + l.rows, 0)} links in ${written.statements} statements (largest ${written.largestStatement} bytes) in ${out}`],
  };
  if (written.triggers.length > 0) {
    plan.notes.push(`triggers ${written.triggers.map((t) => t.name).join(", ")} are dropped and re-created (exact SQL) inside the same transaction, so they do not fire`);
  }
  let comparison: PutBackComparison[] | null = null;
  let failures: PutBackDifference[] = [];
  let kept: PutBackDifference[] = [];
  let ok = true;
  if (apply) {
    if (spec.kind === "d1" && spec.remote) await confirmRemote(opts, spec.database, `This writes ${written.rows} rows into`);
    const now = await target.query<TriggerDef>(TRIGGERS_SQL);
    const relevant = (list: TriggerDef[]) => list.filter((t) => written.triggers.some((w) => w.table === t.table));
    if (!sameTriggers(relevant(now), written.triggers)) {
      throw new BackupError("DATABASE_ERROR", `the triggers of ${target.label} changed while the put-back file was written: nothing was applied; run it again`);
    }
    const file = target.localFile();
    const before = file ? await reporter.step("read target rows", () => snapshotPutBack(file, scratch, written)) : null;
    await reporter.step("apply put-back file", () => target.apply(out, reporter));
    if (file && before) {
      const check = await reporter.step("compare cell by cell", () => comparePutBack(file, scratch, written, before));
      ({ comparison, failures, kept } = check);
      ok = failures.length === 0;
      for (const c of comparison.filter((c) => c.kept > 0)) {
        warnings.push(`${c.table}: ${c.kept} selected row(s) existed in the target with other values; --mode ignore kept the live values (listed above)`);
      }
    } else {
      warnings.push("remote target: rows were applied but not compared cell by cell (no local file to read); compare them yourself");
    }
    const details = {
      mode: "put-back",
      put_back_mode: mode,
      cascade: !!sel.cascade,
      tables: written.tables.map((t) => ({ name: t.name, rows: t.rows, where: t.where })),
      links: written.links.map((l) => ({ table: l.table, columns: l.columns, rows: l.rows })),
      triggers: written.triggers.map((t) => t.name),
      rows: written.rows,
      differences: failures.length,
      rto_ms: Date.now() - started,
      file: out,
    };
    await audit(
      target,
      [
        { action: ok ? "restore_put_back_completed" : "restore_put_back_failed", details },
        ...(verified.signature.allowed ? [{ action: "restore_unsigned_allowed" as const, details }] : []),
      ],
      ctx,
    );
  }
  return result({ ok, mode: "put-back", target: info, plan, checks: null, putBack: { ...written, applied: apply, comparison, failures, kept } });
}
