// One backup run: schema -> streamed SQL -> gzip multipart upload (staging) -> final object with
// metadata -> manifest, written last. Anything that fails leaves no manifest and is logged.
import { tryLogActivity } from "./activity";
import { BackupError, errorMessage, isBackupError, wrapBindingError } from "../errors";
import { DEFAULT_DUMP_OPTIONS, DUMP_FORMAT_VERSION, dumpDatabase, type DumpOptions, type DumpStats } from "./dump";
import { backupNameFor, keysFor } from "./keys";
import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest } from "./manifest";
import { readSchema } from "./schema";
import { signManifest, type SigningKey } from "./signature";
import { MIN_PART_SIZE, copyWithMetadata, uploadGzip } from "./upload";

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
  /** BACKUP_SIGNING_KEY, parsed at the entry point; null/absent: the backup is made unsigned and says so. */
  signingKey?: SigningKey | null;
}

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
  const keys = keysFor(backupNameFor(now));
  const partSize = options.partSizeBytes ?? MIN_PART_SIZE;
  let wroteObject = false;
  let staged = false;

  try {
    if ((await headOrNull(bucket, keys.object)) || (await headOrNull(bucket, keys.manifest))) {
      throw new BackupError("BACKUP_EXISTS", `a backup named ${keys.name} already exists; try again in a second`);
    }
    const schema = await readSchema(db);
    const dumpOptions: DumpOptions = {
      ...DEFAULT_DUMP_OPTIONS,
      ...options.dump,
      header: [
        `d1-backup dump format ${DUMP_FORMAT_VERSION}: ${keys.name}, taken ${now.toISOString()}`,
        `latest migration: ${schema.latestMigration ?? "(none)"}`,
        "Restore into an EMPTY database: npx wrangler d1 execute <db> --file=<this file>, or sqlite3 new.db < <this file>",
      ],
    };
    const stats: DumpStats = {
      tables: [],
      statements: 0,
      snapshot: { mode: "paged", atomic: false, databaseBytes: null, budgetBytes: dumpOptions.snapshotBudgetBytes },
    };

    staged = true;
    const uploaded = await uploadGzip(bucket, keys.staging, dumpDatabase(db, schema, dumpOptions, stats), partSize);
    if (stats.tables.length !== schema.tables.length) {
      throw new BackupError("INTERNAL", `dump covered ${stats.tables.length} of ${schema.tables.length} tables`);
    }

    const timestamp = now.toISOString();
    wroteObject = true;
    await copyWithMetadata(
      bucket,
      keys.staging,
      keys.object,
      { size: uploaded.size, sha256: uploaded.sha256 },
      {
        httpMetadata: { contentType: "application/gzip", contentDisposition: `attachment; filename="${keys.name}.sql.gz"` },
        customMetadata: {
          "backup-timestamp": timestamp,
          "backup-size": String(uploaded.size),
          "tables-count": String(schema.tables.length),
          sha256: uploaded.sha256,
          "format-version": String(DUMP_FORMAT_VERSION),
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
      object: { key: keys.object, size: uploaded.size, sha256: uploaded.sha256, contentEncoding: "gzip" },
      sql: {
        size: uploaded.plainSize,
        sha256: uploaded.plainSha256,
        statements: stats.statements,
        dumpFormatVersion: DUMP_FORMAT_VERSION,
      },
      schema: {
        latestMigration: schema.latestMigration,
        migrationsApplied: schema.migrationsApplied,
        tables: schema.tables.length,
        indexes: schema.objects.filter((o) => o.type === "index").length,
        triggers: schema.objects.filter((o) => o.type === "trigger").length,
        views: schema.objects.filter((o) => o.type === "view").length,
      },
      tables: stats.tables,
      totalRows,
      snapshot: stats.snapshot,
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
        tables: schema.tables.length,
        rows: totalRows,
        duration_ms: manifest.durationMs,
        snapshot: stats.snapshot.mode,
        signed_by: manifest.signature?.keyId ?? null,
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
        warnings,
      },
    };
  } catch (e) {
    const error = isBackupError(e) ? e : new BackupError("INTERNAL", `backup failed: ${errorMessage(e)}`, { cause: e });
    // Leave nothing that could pass for a backup. The manifest was never written (it is last).
    if (staged) await bucket.delete(keys.staging).catch(() => {});
    if (wroteObject) await bucket.delete(keys.object).catch(() => {});
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
