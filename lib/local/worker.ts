// A local-only Worker that runs the backup library inside workerd — the runtime production uses —
// for the CLIs and the benchmark. It is never deployed: lib/local/runner.ts starts it in-process
// with wrangler against the local D1/R2 state and calls it; nothing else can reach it.
import {
  backupDatabase,
  backupResponse,
  DEFAULT_DUMP_OPTIONS,
  dumpDatabase,
  encryptStream,
  generateAgeKey,
  gzipKind,
  gzipStream,
  BackupError,
  cleanupResponse,
  errorResponse,
  listBackups,
  listResponse,
  parseAgeRecipients,
  parseSigningKey,
  readSchema,
  runBackup,
  runCleanup,
  type DumpStats,
  type RetentionPolicy,
  type RunSettings,
} from "../backup";
import { offsiteStep, parseOffsiteConfig } from "../offsite";
import { parseDrillBudget, runRestoreDrill } from "../drill";
import { bestOf, readEveryRow, readOurQueries } from "./floor";
import { remoteD1 } from "./remote-d1";

interface Env {
  DB: D1Database;
  DOCUMENTS: R2Bucket;
  /** Handed over by the CLI (scripts/backup.ts reads it from the environment or .dev.vars). */
  BACKUP_SIGNING_KEY?: string;
  /** Likewise BACKUP_AGE_RECIPIENTS: age1… public keys to encrypt the object to. */
  BACKUP_AGE_RECIPIENTS?: string;
  /** OFFSITE_S3_*, handed over the same way (scripts/backup.ts). */
  [offsite: `OFFSITE_S3_${string}`]: string | undefined;
  /** Only when started with functions/wrangler.toml (the benchmark of the restore drill). */
  RESTORE_DRILL_DB?: D1Database;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (request.method === "POST" && url.pathname === "/backup") {
        const body = (await request.json().catch(() => ({}))) as {
          now?: string;
          dump?: Record<string, number>;
          leaseTtlMs?: number;
          /** Test knob: a multipart part size below S3's 5 MiB against a local S3 server. */
          offsitePartSizeBytes?: number;
        };
        // Parsed here, the entry point of this path, and handed down like in production.
        const signing = await parseSigningKey(env.BACKUP_SIGNING_KEY);
        if (signing.problem) throw new BackupError("CONFIG_ERROR", signing.problem);
        const age = parseAgeRecipients(env.BACKUP_AGE_RECIPIENTS);
        if (age.problem) throw new BackupError("CONFIG_ERROR", age.problem);
        const settings: RunSettings = {
          signingKey: signing.key,
          encryption: age.encryption,
          leaseTtlMs: body.leaseTtlMs,
          offsite: offsiteStep(parseOffsiteConfig((name) => env[name as `OFFSITE_S3_${string}`]), {
            client: body.offsitePartSizeBytes ? { partSizeBytes: body.offsitePartSizeBytes } : undefined,
          }),
        };
        const now = body.now ? new Date(body.now) : undefined;
        // Tuning knobs (tests, benchmark) go straight to the library; a plain run takes the lock
        // like every other entry point, so the CLI never collides with the nightly run.
        const { summary, manifest } = body.dump
          ? await backupDatabase({ db: env.DB, bucket: env.DOCUMENTS, trigger: "cli", now, dump: body.dump, signingKey: settings.signingKey, encryption: settings.encryption })
          : await runBackup({ db: env.DB, bucket: env.DOCUMENTS, trigger: "cli", now, ...settings });
        return Response.json({ ...backupResponse(summary), manifest });
      }
      if (request.method === "POST" && url.pathname === "/drill") {
        // The nightly drill of one backup (default: the newest), as the cron Worker runs it.
        const body = (await request.json().catch(() => ({}))) as { name?: string; maxQueries?: string; spentQueries?: number };
        const name = body.name ?? (await listBackups(env.DOCUMENTS)).backups[0]?.name;
        if (!name) throw new BackupError("NOT_FOUND", "no backup to drill");
        const { budget, problem } = parseDrillBudget(body.maxQueries);
        if (problem) throw new BackupError("INVALID_INPUT", problem);
        return Response.json(await runRestoreDrill({ db: env.DB, scratch: env.RESTORE_DRILL_DB, bucket: env.DOCUMENTS, name, budget, spentQueries: body.spentQueries }));
      }
      if (request.method === "POST" && url.pathname === "/cleanup") {
        // The CLI parsed BACKUP_RETENTION (its entry point) and sends the policy; runCleanup checks it again.
        const body = (await request.json().catch(() => ({}))) as { now?: string; dryRun?: boolean; policy?: RetentionPolicy };
        const now = body.now ? new Date(body.now) : undefined;
        const result = await runCleanup({ db: env.DB, bucket: env.DOCUMENTS, trigger: "cli", now, dryRun: body.dryRun === true, policy: body.policy });
        return Response.json({ success: true, ...cleanupResponse(result) });
      }
      if (request.method === "POST" && url.pathname === "/profile") {
        return Response.json(await profile(env.DB));
      }
      if (request.method === "POST" && url.pathname === "/across") {
        // The benchmark with D1 in another workerd process (d1-host.ts at this URL).
        const body = (await request.json()) as { d1Host: string; measure: AcrossMeasure };
        return Response.json({ ms: await across(remoteD1(body.d1Host), env.DOCUMENTS, body.measure) });
      }
      if (request.method === "GET" && url.pathname === "/list") {
        return Response.json(listResponse(await listBackups(env.DOCUMENTS)));
      }
      return Response.json({ success: false, error: { code: "NOT_FOUND", message: "no such local operation" } }, { status: 404 });
    } catch (e) {
      const { status, body } = errorResponse(e);
      // Local tool: show the real message of unexpected errors too.
      if (body.error.code === "INTERNAL") body.error.message = e instanceof Error ? e.message : String(e);
      return Response.json(body, { status });
    }
  },
};

type AcrossMeasure = "select" | "ours-read" | "backup";

/**
 * One figure, best of two, reading D1 in another process: the read floor (every row in keyset
 * pages, `SELECT *`, nothing done with it), our own read queries alone, or our whole backup
 * (consistency checked), where the next page is read while this one is formatted, gzipped, hashed
 * and uploaded. The bench asks for each in fresh processes: one figure's garbage never slows another.
 */
async function across(db: D1Database, bucket: R2Bucket, measure: AcrossMeasure): Promise<number> {
  const { tables } = await readSchema(db);
  if (measure === "select") return bestOf(2, () => readEveryRow(db, tables, "paged"));
  if (measure === "ours-read") return bestOf(2, () => readOurQueries(db, tables));
  let best = Infinity;
  // A second apart at least: two backups may not share a one-second name.
  for (let i = 0; i < 2; i++) best = Math.min(best, (await backupDatabase({ db, bucket, trigger: "cli", now: new Date(Date.now() + i * 1000) })).manifest.durationMs);
  return best;
}

/**
 * Where a backup's time goes (for the benchmark): reading every row through the D1 API (`SELECT *`
 * whole and paged, and our own read queries; the bench takes the fastest as the floor), the dump
 * generator alone (read + format), and gzip alone.
 * workerd's clock advances at I/O, which each step does plenty of.
 */
async function profile(db: D1Database): Promise<Record<string, number | string>> {
  const schema = await readSchema(db);
  const stats: DumpStats = { tables: [], statements: 0, snapshot: { mode: "paged", atomic: false, databaseBytes: null, budgetBytes: 0 } };
  const chunks: Uint8Array[] = [];
  const encoder = new TextEncoder();
  let t = Date.now();
  let sqlBytes = 0;
  for await (const chunk of dumpDatabase(db, schema, { ...DEFAULT_DUMP_OPTIONS, snapshotBudgetBytes: 0, header: [] }, stats)) {
    const bytes = encoder.encode(chunk);
    sqlBytes += bytes.length;
    // Keep at most ~64 MB for the gzip measurement below.
    if (sqlBytes < 64 * 1024 * 1024) chunks.push(bytes);
  }
  const dumpOnlyMs = Date.now() - t;

  // The reads after the dump: their whole-table results (over 100 MB at 1M rows) left local D1's
  // Durable Object to be reset during a dump that followed them (total_changes() back to 0, so the
  // dump failed as changed).
  const selectAllMs = await bestOf(3, () => readEveryRow(db, schema.tables, "whole"));
  const selectPagedMs = await bestOf(3, () => readEveryRow(db, schema.tables, "paged"));
  // Our own read queries (exact literals built inside SQLite), in pages, with nothing done to the rows.
  const oursReadMs = await bestOf(3, () => readOurQueries(db, schema.tables));

  t = Date.now();
  // The backup's own gzip stage (node:zlib here; see lib/backup/gzip.ts).
  const gzip = gzipStream();
  const writer = gzip.writable.getWriter();
  const reader = gzip.readable.getReader();
  const drained = (async () => {
    while (!(await reader.read()).done);
  })();
  let gzipInput = 0;
  for (const c of chunks) {
    await writer.write(c);
    gzipInput += c.length;
  }
  await writer.close();
  await drained;
  const gzipMs = Date.now() - t;

  // The same gzip with age after it (BACKUP_AGE_RECIPIENTS), to one recipient: what encryption adds.
  const { recipient } = await generateAgeKey();
  t = Date.now();
  const gzip2 = gzipStream();
  const writer2 = gzip2.writable.getWriter();
  const reader2 = (await encryptStream(gzip2.readable, { scheme: "age", recipients: [recipient] })).getReader();
  const drained2 = (async () => {
    while (!(await reader2.read()).done);
  })();
  for (const c of chunks) await writer2.write(c);
  await writer2.close();
  await drained2;
  const gzipAgeMs = Date.now() - t;
  return { selectAllMs, selectPagedMs, oursReadMs, dumpOnlyMs, gzipMs, gzipAgeMs, gzipInputBytes: gzipInput, sqlBytes, gzip: gzipKind() };
}
