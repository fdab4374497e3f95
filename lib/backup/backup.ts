// One backup run: schema -> streamed SQL -> gzip multipart upload (staging) -> final object with
// metadata -> manifest, written last. Anything that fails leaves no manifest and is logged.
import { tryLogActivity } from "./activity";
import { BackupError, errorMessage, isBackupError, wrapBindingError } from "../errors";
import { DEFAULT_DUMP_OPTIONS, DUMP_FORMAT_VERSION, dumpDatabase, readSchemaFingerprint, type DumpOptions, type DumpStats, type OwnWrites } from "./dump";
import type { AgeEncryption } from "./encryption";
import { allObjectKeysFor, backupNameFor, keysFor, objectFileName } from "./keys";
import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest } from "./manifest";
import { dumpedTableCount, readSchema, type SchemaInfo } from "./schema";
import { signManifest, type SigningKey } from "./signature";
import { MIN_PART_SIZE, copyWithMetadata, uploadGzip, type StreamUploadResult } from "./upload";

export type BackupTrigger = "manual" | "scheduled" | "cli";

export interface BackupOptions {
  db: D1Database;
  bucket: R2Bucket;
  /** The backup's timestamp (and key). Defaults to the current time. */
  now?: Date;
  trigger?: BackupTrigger;
  /** Clerk user id of the admin who asked, for the audit trail. */
  actor?: string | null;
  dump?: Partial<Omit<DumpOptions, "header">>;
  partSizeBytes?: number;
  /** How often a paged dump that saw writes is tried again before the run fails. */
  consistency?: Partial<ConsistencyOptions>;
  /** The run's lease: its renewals must ride inside the dump's watched reads (see OwnWrites). */
  ownWrites?: OwnWrites;
  /** BACKUP_SIGNING_KEY, parsed at the entry point; null/absent: the backup is made unsigned and says so. */
  signingKey?: SigningKey | null;
  /** BACKUP_AGE_RECIPIENTS, parsed at the entry point; null/absent: the object is plain gzip. */
  encryption?: AgeEncryption | null;
}

export interface ConsistencyOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait before the second attempt; doubled each time after (with jitter). */
  backoffMs: number;
}

// 4 attempts, waits of about 2, 4 and 8 s: a burst of portal writes is over long before, and the
// whole run stays well inside the cron Worker's 15 minutes even for a dump of minutes.
export const DEFAULT_CONSISTENCY: ConsistencyOptions = { attempts: 4, backoffMs: 2000 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The shape the API returns for a backup (kept compatible with the original system). */
export interface BackupSummary {
  key: string;
  manifestKey: string;
  name: string;
  timestamp: string;
  size: number;
  size_kb: string;
  sha256: string;
  tables: string[];
  totalRows: number;
  snapshot: Manifest["snapshot"]["mode"];
  /** Who signed the manifest (null: unsigned). */
  signature: { alg: string; keyId: string } | null;
  /** The age recipients the object is encrypted to (null: plain gzip). */
  encryption: AgeEncryption | null;
  /** The off-site copy of this backup, when OFFSITE_S3_* are set (run.ts adds it after the copy). */
  offsite?: { verified: boolean; key: string | null; endpointHost: string | null; bucket: string | null };
  warnings: string[];
}

export interface BackupResult {
  summary: BackupSummary;
  manifest: Manifest;
}

export async function backupDatabase(options: BackupOptions): Promise<BackupResult> {
  const { db, bucket } = options;
  const started = Date.now();
  const now = options.now ?? new Date();
  const trigger = options.trigger ?? "manual";
  const encryption = options.encryption ?? null;
  const keys = keysFor(backupNameFor(now), { encrypted: !!encryption });
  const partSize = options.partSizeBytes ?? MIN_PART_SIZE;
  let wroteObject = false;
  let staged = false;

  try {
    const existing = [...allObjectKeysFor(keys.name).objects, keys.manifest];
    if ((await Promise.all(existing.map((k) => headOrNull(bucket, k)))).some(Boolean)) {
      throw new BackupError("BACKUP_EXISTS", `a backup named ${keys.name} already exists; try again in a second`);
    }
    const consistency = { ...DEFAULT_CONSISTENCY, ...options.consistency };
    const firstAttempt = Date.now();
    let schema: SchemaInfo;
    let stats: DumpStats;
    let uploaded: StreamUploadResult;
    for (let attempt = 1; ; attempt++) {
      // Read before the schema, compared after the last row: no DDL may land in between either.
      const fingerprint = await readSchemaFingerprint(db);
      schema = await readSchema(db);
      const dumpOptions: DumpOptions = {
        ...DEFAULT_DUMP_OPTIONS,
        ...options.dump,
        ownWrites: options.ownWrites,
        header: [
          `d1-backup dump format ${DUMP_FORMAT_VERSION}: ${keys.name}, taken ${now.toISOString()}`,
          `latest migration: ${schema.latestMigration ?? "(none)"}`,
          "Restore into an EMPTY database: npx wrangler d1 execute <db> --file=<this file>, or sqlite3 new.db < <this file>",
        ],
      };
      stats = {
        tables: [],
        statements: 0,
        snapshot: { mode: "paged", atomic: false, databaseBytes: null, budgetBytes: dumpOptions.snapshotBudgetBytes },
      };
      staged = true;
      try {
        uploaded = await uploadGzip(bucket, keys.staging, dumpDatabase(db, schema, dumpOptions, stats, fingerprint), partSize, encryption);
        stats.snapshot.attempts = attempt;
        break;
      } catch (e) {
        if (!isBackupError(e) || e.code !== "DATABASE_BUSY") throw e;
        // The attempt saw a write: its upload was aborted; drop anything staged and read again.
        await bucket.delete(keys.staging).catch(() => {});
        const elapsed = Date.now() - firstAttempt;
        if (attempt >= consistency.attempts) {
          throw new BackupError(
            "DATABASE_BUSY",
            `writes never stopped during ${attempt} attempts over ${(elapsed / 1000).toFixed(1)} s, so no consistent snapshot could be read (last: ${e.message})`,
            { cause: e, details: { attempts: attempt, elapsedMs: elapsed } },
          );
        }
        // Exponential backoff with jitter: writers that come in bursts get a gap to finish.
        await sleep(consistency.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
      }
    }
    if (stats.tables.length !== dumpedTableCount(schema)) {
      throw new BackupError("INTERNAL", `dump covered ${stats.tables.length} of ${dumpedTableCount(schema)} tables`);
    }

    const timestamp = now.toISOString();
    wroteObject = true;
    await copyWithMetadata(
      bucket,
      keys.staging,
      keys.object,
      { size: uploaded.size, sha256: uploaded.sha256 },
      {
        httpMetadata: {
          contentType: encryption ? "application/octet-stream" : "application/gzip",
          contentDisposition: `attachment; filename="${objectFileName(keys.object)}"`,
        },
        customMetadata: {
          "backup-timestamp": timestamp,
          "backup-size": String(uploaded.size),
          "tables-count": String(dumpedTableCount(schema)),
          sha256: uploaded.sha256,
          "format-version": String(DUMP_FORMAT_VERSION),
          ...(encryption ? { encryption: "age" } : {}),
        },
      },
      partSize,
    );

    const totalRows = stats.tables.reduce((n, t) => n + t.rows, 0);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      name: keys.name,
      createdAt: timestamp,
      completedAt: new Date(now.getTime() + (Date.now() - started)).toISOString(),
      durationMs: Date.now() - started,
      trigger,
      object: { key: keys.object, size: uploaded.size, sha256: uploaded.sha256, contentEncoding: encryption ? "age+gzip" : "gzip" },
      sql: {
        size: uploaded.plainSize,
        sha256: uploaded.plainSha256,
        statements: stats.statements,
        dumpFormatVersion: DUMP_FORMAT_VERSION,
      },
      schema: {
        latestMigration: schema.latestMigration,
        migrationsApplied: schema.migrationsApplied,
        tables: dumpedTableCount(schema),
        indexes: schema.objects.filter((o) => o.type === "index").length,
        triggers: schema.objects.filter((o) => o.type === "trigger").length,
        views: schema.objects.filter((o) => o.type === "view").length,
      },
      tables: stats.tables,
      sequences: stats.sequences ?? [],
      totalRows,
      snapshot: stats.snapshot,
      encryption: encryption ? { scheme: "age", recipients: [...encryption.recipients] } : null,
    };
    // Signed last, over everything above: the object and SQL hashes are in it.
    manifest.signature = options.signingKey ? await signManifest(manifest, options.signingKey) : null;
    try {
      // Written last: its presence is what marks the backup complete.
      await bucket.put(keys.manifest, JSON.stringify(manifest, null, 2), {
        httpMetadata: { contentType: "application/json" },
      });
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", "writing the manifest failed", e);
    }

    const warnings: string[] = [];
    if (!manifest.signature) warnings.push("unsigned backup: BACKUP_SIGNING_KEY is not set, so a restore needs --allow-unsigned (BACKUP_SETUP.md)");
    try {
      await bucket.delete(keys.staging);
    } catch (e) {
      warnings.push(`staged copy ${keys.staging} was not removed: ${errorMessage(e)}`);
    }
    const logWarning = await tryLogActivity(db, {
      action: "database_backup_created",
      userId: options.actor,
      entityId: keys.object,
      details: {
        trigger,
        key: keys.object,
        size: uploaded.size,
        sha256: uploaded.sha256,
        tables: dumpedTableCount(schema),
        rows: totalRows,
        duration_ms: manifest.durationMs,
        snapshot: stats.snapshot.mode,
        signed_by: manifest.signature?.keyId ?? null,
        encrypted: !!encryption,
      },
    });
    if (logWarning) warnings.push(logWarning);

    return {
      manifest,
      summary: {
        key: keys.object,
        manifestKey: keys.manifest,
        name: keys.name,
        timestamp,
        size: uploaded.size,
        size_kb: (uploaded.size / 1024).toFixed(2),
        sha256: uploaded.sha256,
        tables: stats.tables.map((t) => t.name),
        totalRows,
        snapshot: stats.snapshot.mode,
        signature: manifest.signature ? { alg: manifest.signature.alg, keyId: manifest.signature.keyId } : null,
        encryption,
        warnings,
      },
    };
  } catch (e) {
    const error = isBackupError(e) ? e : new BackupError("INTERNAL", `backup failed: ${errorMessage(e)}`, { cause: e });
    // Leave nothing that could pass for a backup. The manifest was never written (it is last).
    if (staged) await bucket.delete(keys.staging).catch(() => {});
    if (wroteObject) await bucket.delete(keys.object).catch(() => {});
    // A second click in the same second finds the first one's backup: that one succeeded, so this
    // is a refusal (409, like a run in progress), not a failed backup for health to report.
    if (error.code === "BACKUP_EXISTS") throw error;
    await tryLogActivity(db, {
      action: "database_backup_failed",
      userId: options.actor,
      entityId: keys.object,
      details: { trigger, key: keys.object, code: error.code, reason: error.message },
    });
    throw error;
  }
}

async function headOrNull(bucket: R2Bucket, key: string): Promise<R2Object | null> {
  try {
    return await bucket.head(key);
  } catch (e) {
    throw wrapBindingError("STORAGE_ERROR", `checking ${key} failed`, e);
  }
}
