// The nightly restore drill: prove the backup just made restores, by restoring it into a scratch
// D1 database (RESTORE_DRILL_DB) and checking the result against its manifest. Every outcome is
// one activity_log row in the portal: restore_drill_completed (with the replay time, the RTO the
// drill measured), restore_drill_failed (what differed, naming the table; or a refusal), or
// restore_drill_skipped (why, with the figures). A drill never changes the backup's own outcome.
import {
  errorMessage,
  isBackupError,
  keysFor,
  parseManifest,
  tryLogActivity,
  verifyManifestSignature,
  wrapBindingError,
  type Manifest,
  type VerifyKey,
} from "../backup";
import { countingDatabase, estimateDrillQueries, estimateRunQueries, OverBudget, type DrillBudget } from "./budget";
import { checkRestored, describeDifferences, type Difference, type TableResult } from "./check";
import { DrillRefused, proveScratchDatabase } from "./guard";
import { emptyDatabase, replayDump } from "./replay";

export type DrillOutcome = "completed" | "failed" | "skipped";

export interface DrillResult {
  outcome: DrillOutcome;
  /** The backup drilled (its object key). */
  key: string;
  /** One line for people. */
  summary: string;
  details: Record<string, unknown>;
}

export interface DrillOptions {
  /** The portal's database: read to prove the scratch is another one, and where the outcome is logged. */
  db: D1Database;
  /** RESTORE_DRILL_DB; null/undefined when the binding is not configured. */
  scratch: D1Database | null | undefined;
  bucket: R2Bucket;
  /** The backup to drill (normally the one the nightly run just made). */
  name: string;
  budget: DrillBudget;
  /** Queries this invocation spent before the drill; estimated from the backup's manifest if absent. */
  spentQueries?: number;
  /** BACKUP_VERIFY_KEY when the Worker has it; the cron Worker normally holds only the signing key. */
  verifyKeys?: VerifyKey[];
  now?: Date;
}

/** Why the drill is skipped without being attempted (before anything is read from R2 or written). */
function encrypted(manifest: Manifest): boolean {
  // An age-encrypted object (…sql.gz.age) can only be decrypted with a key the Worker never has:
  // the drill would need the plaintext stream. Skipped and said so, never silently.
  return manifest.object.contentEncoding === "age+gzip" || manifest.object.key.endsWith(".age") || Boolean(manifest.encryption);
}

export async function runRestoreDrill(opts: DrillOptions): Promise<DrillResult> {
  const now = opts.now ?? new Date();
  const keys = keysFor(opts.name);
  const base = { key: keys.object, name: opts.name };
  const started = Date.now();
  let stage = "manifest";
  let replayMs: number | null = null;
  let queries = 0;
  const finish = async (outcome: DrillOutcome, summary: string, details: Record<string, unknown>): Promise<DrillResult> => {
    const all: Record<string, unknown> = { ...base, ...details, queries, total_ms: Date.now() - started };
    const warning = await tryLogActivity(opts.db, { action: `restore_drill_${outcome}`, entityId: keys.object, details: all });
    if (warning) all.log_warning = warning;
    (outcome === "completed" ? console.log : console.error)(`restore drill ${outcome} for ${opts.name}: ${summary}`);
    return { outcome, key: keys.object, summary, details: all };
  };

  if (!opts.scratch) {
    return finish("skipped", "RESTORE_DRILL_DB is not configured (BACKUP_SETUP.md: the restore drill)", {
      reason: "not_configured",
    });
  }
  const counted = countingDatabase(opts.scratch, () => queries++);
  try {
    const raw = await opts.bucket.get(keys.manifest);
    if (!raw) throw new Error(`manifest ${keys.manifest} not found`);
    const text = await raw.text();
    const manifest = parseManifest(text, keys.manifest);

    if (encrypted(manifest)) {
      return finish("skipped", "the backup object is encrypted; the Worker holds no decryption key", { reason: "encrypted" });
    }
    const spent = opts.spentQueries ?? estimateRunQueries(manifest);
    const estimate = estimateDrillQueries(manifest, opts.budget);
    const limit = Math.max(0, opts.budget.maxQueries - spent);
    const figures = {
      estimated_queries: estimate,
      available_queries: limit,
      max_queries: opts.budget.maxQueries,
      spent_before: spent,
      sql_bytes: manifest.sql.size,
      statements: manifest.sql.statements,
      rows: manifest.totalRows,
    };
    if (estimate > limit) {
      return finish(
        "skipped",
        `restoring ${manifest.sql.statements} statements (${manifest.sql.size} bytes of SQL) needs about ${estimate} D1 queries; ` +
          `${limit} of this invocation's ${opts.budget.maxQueries} are left (RESTORE_DRILL_MAX_QUERIES)`,
        { reason: "over_budget", ...figures },
      );
    }

    // The signature first: the Worker signs, and usually holds no public key to check with.
    let signature = "not-checked";
    if (opts.verifyKeys && opts.verifyKeys.length > 0) {
      const state = await verifyManifestSignature(JSON.parse(text), opts.verifyKeys);
      signature = state.state;
      if (state.state === "invalid" || state.state === "unknown-key") {
        return finish("failed", `the manifest's signature is ${state.state}`, { stage: "signature", signature, reason: `signature ${state.state}` });
      }
    }

    stage = "guard";
    await proveScratchDatabase(opts.db, counted, now);
    queries += 3; // the guard's reads of DB
    stage = "empty";
    await emptyDatabase(counted);

    stage = "replay";
    const obj = await opts.bucket.get(keys.object);
    if (!obj) throw wrapBindingError("STORAGE_ERROR", `reading ${keys.object}`, new Error("object not found"));
    const replay = await replayDump(counted, obj.body, {
      batchBytes: opts.budget.batchBytes,
      batchStatements: opts.budget.batchStatements,
      beforeBatch: () => {
        if (queries + 1 > limit) throw new OverBudget(queries + 1, limit);
      },
    });
    replayMs = replay.ms;
    const hashDiffs: Difference[] = [];
    if (replay.objectSha256 !== manifest.object.sha256 || replay.objectSize !== manifest.object.size) {
      hashDiffs.push({ what: "object sha256", expected: manifest.object.sha256, actual: replay.objectSha256 });
    }
    if (replay.sqlSha256 !== manifest.sql.sha256) hashDiffs.push({ what: "SQL sha256", expected: manifest.sql.sha256, actual: replay.sqlSha256 });

    stage = "check";
    const check = await checkRestored(counted, manifest, replay.statements);
    const differences = [...hashDiffs, ...check.differences];
    const tables = check.tables.map((t: TableResult) => ({ name: t.name, rows: t.rows, checked: t.checked, ok: t.ok }));
    const measured = {
      replay_ms: replay.ms,
      check_ms: check.ms,
      statements: replay.statements,
      batches: replay.batches,
      signature,
      estimated_queries: estimate,
      available_queries: limit,
    };
    if (differences.length > 0) {
      return finish("failed", describeDifferences(differences), {
        stage: "check",
        reason: describeDifferences(differences),
        differences: differences.slice(0, 20),
        tables,
        ...measured,
      });
    }
    return finish("completed", `restored ${manifest.totalRows} rows in ${(replay.ms / 1000).toFixed(1)} s; every check passed`, {
      ...measured,
      rows: manifest.totalRows,
      tables,
    });
  } catch (e) {
    if (e instanceof OverBudget) {
      return finish("skipped", `${e.message} (RESTORE_DRILL_MAX_QUERIES)`, { reason: "over_budget", stage, spent: e.spent, available_queries: e.limit });
    }
    if (e instanceof DrillRefused) return finish("failed", e.message, { stage: "refused", refused: true, reason: e.message });
    return finish("failed", errorMessage(e), {
      stage,
      reason: errorMessage(e),
      code: isBackupError(e) ? e.code : "INTERNAL",
      ...(replayMs !== null ? { replay_ms: replayMs } : {}),
    });
  }
}
