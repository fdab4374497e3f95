// The off-site copy of sealed backups, run by the backup run right after the backup is sealed
// (lib/backup/run.ts calls the step the entry point hands it). For each complete R2 backup
// without a verified copy in this bucket, newest first and a few per run: stream the object, then
// its manifest, read the object back and check its sha256 against the manifest, then record the
// copy in the R2 manifest (re-signed). A failure is logged and reported, never thrown: the R2
// backup is good without it, and the next run tries again.
import {
  BackupError,
  errorMessage,
  hasVerifiedOffsite,
  isBackupError,
  isFutureDated,
  keysFor,
  listBackups,
  parseManifest,
  signManifest,
  tryLogActivity,
  type BackupEntry,
  type Manifest,
  type OffsiteStep,
  type SigningKey,
} from "../backup";
import { offsiteKeyFor, type OffsiteConfig, type OffsiteSetting } from "./config";
import { hashStream, OffsiteClient, type OffsiteClientOptions } from "./s3";
import { applyOffsiteRetention, type OffsiteRetentionReport } from "./retention";

/** Backups copied in one run at most: a long outage is caught up over a few nights, never in one run that outlasts its limits. */
export const DEFAULT_CATCH_UP_LIMIT = 3;

export interface OffsiteCopied {
  name: string;
  key: string;
  bytes: number;
  ms: number;
  offsite: NonNullable<Manifest["offsite"]>;
  /** The R2 manifest as rewritten with the record. */
  manifest: Manifest;
}

export interface OffsiteCopyReport {
  /** False: OFFSITE_S3_* are not set, nothing was tried. */
  configured: boolean;
  copied: OffsiteCopied[];
  /** The copy that failed (the run stops at the first failure: the next would most likely fail the same way). */
  failed: { name: string | null; key: string | null; code: string; reason: string } | null;
  /** Complete backups still without a verified copy after this run. */
  missing: string[];
  warnings: string[];
  /** The nightly run's retention in the off-site bucket, when it ran. */
  retention?: OffsiteRetentionReport;
}

export interface OffsiteCopyOptions {
  /** The run's (leased) R2 bucket: the manifest rewrite goes through it. */
  bucket: R2Bucket;
  db: D1Database;
  offsite: OffsiteSetting;
  signingKey?: SigningKey | null;
  now?: Date;
  limit?: number;
  /** The backup just made, named in the failure when nothing else is. */
  newest?: string;
  actor?: string | null;
  client?: OffsiteClientOptions;
}

/** A signed manifest can take the copy's record only where it can be signed again; else it stays as it is. */
const canRecord = (m: Manifest, signingKey: SigningKey | null | undefined) => !m.signature || !!signingKey;

const copiedHere = (m: Manifest, c: OffsiteConfig) => hasVerifiedOffsite(m) && m.offsite!.endpointHost === c.endpointHost && m.offsite!.bucket === c.bucket;

export async function copyMissingToOffsite(opts: OffsiteCopyOptions): Promise<OffsiteCopyReport> {
  const report: OffsiteCopyReport = { configured: false, copied: [], failed: null, missing: [], warnings: [] };
  const { config, problem } = opts.offsite;
  const fail = async (name: string | null, e: unknown) => {
    const error = isBackupError(e) ? e : new BackupError("INTERNAL", errorMessage(e), { cause: e });
    const key = name ? keysFor(name).object : null;
    report.failed = { name, key, code: error.code, reason: error.message };
    report.warnings.push(`off-site copy${name ? ` of ${name}` : ""} failed (the R2 backup is good; the next run tries again): ${error.message}`);
    const w = await tryLogActivity(opts.db, {
      action: "offsite_copy_failed",
      userId: opts.actor,
      entityId: key,
      details: { key, endpoint: config?.endpointHost ?? null, bucket: config?.bucket ?? null, code: error.code, reason: error.message },
    });
    if (w) report.warnings.push(w);
  };
  if (problem) {
    report.configured = true;
    await fail(opts.newest ?? null, new BackupError("CONFIG_ERROR", problem));
    return report;
  }
  if (!config) return report;
  report.configured = true;
  const now = opts.now ?? new Date();
  let pending: BackupEntry[];
  try {
    pending = (await listBackups(opts.bucket)).backups.filter((b) => !isFutureDated(b.name, now) && !copiedHere(b.manifest, config));
  } catch (e) {
    await fail(opts.newest ?? null, e);
    return report;
  }
  const recordable = pending.filter((b) => canRecord(b.manifest, opts.signingKey));
  if (recordable.length < pending.length) {
    report.warnings.push(`${pending.length - recordable.length} signed backup(s) are not copied off-site: BACKUP_SIGNING_KEY is not set, so their manifests cannot record the copy`);
  }
  const client = new OffsiteClient(config, opts.client);
  for (const entry of recordable.slice(0, opts.limit ?? DEFAULT_CATCH_UP_LIMIT)) {
    try {
      report.copied.push(await copyOne(client, opts, entry));
    } catch (e) {
      await fail(entry.name, e);
      break;
    }
  }
  const done = new Set(report.copied.map((c) => c.name));
  report.missing = pending.filter((b) => !done.has(b.name)).map((b) => b.name);
  return report;
}

async function copyOne(client: OffsiteClient, opts: OffsiteCopyOptions, entry: BackupEntry): Promise<OffsiteCopied> {
  const started = Date.now();
  const keys = keysFor(entry.name);
  const config = client.config;
  const manifestKey = offsiteKeyFor(config, keys.manifest);
  const r2 = (what: string) => (e: unknown) => {
    throw new BackupError("STORAGE_ERROR", `reading ${what} from R2 failed: ${errorMessage(e)}`, { cause: e });
  };
  const manifestObj = await opts.bucket.get(keys.manifest).catch(r2(keys.manifest));
  if (!manifestObj) throw new BackupError("NOT_FOUND", `${keys.manifest} disappeared from R2`);
  // The stored text, byte for byte: the off-site manifest is the one that was signed when the backup was sealed.
  const manifestText = await manifestObj.text();
  const manifest = parseManifest(manifestText, keys.manifest);
  // Read again since the listing: refuse before copying anything rather than break a signature after.
  if (!canRecord(manifest, opts.signingKey)) {
    throw new BackupError("CONFIG_ERROR", `the copy cannot be recorded: ${keys.manifest} is signed and BACKUP_SIGNING_KEY is not set here`);
  }
  // The object the manifest names: `.sql.gz`, or `.sql.gz.age` when it was encrypted.
  const r2Key = manifest.object.key;
  const objectKey = offsiteKeyFor(config, r2Key);
  const obj = await opts.bucket.get(r2Key).catch(r2(r2Key));
  if (!obj) throw new BackupError("NOT_FOUND", `${r2Key} disappeared from R2`);

  const expected = { size: manifest.object.size, sha256: manifest.object.sha256 };
  await client.uploadStream(objectKey, obj.body as unknown as ReadableStream<Uint8Array>, { contentType: manifest.object.contentEncoding === "gzip" ? "application/gzip" : "application/octet-stream", expected });
  await client.putObject(manifestKey, manifestText, "application/json");

  // Read back: what the off-site bucket serves must be the manifest's bytes.
  const back = await client.getObject(objectKey);
  if (!back) throw new BackupError("INTEGRITY_ERROR", `read-back of ${objectKey} at ${client.where}: the object is not there`);
  const got = await hashStream(back.body);
  if (got.size !== expected.size || got.sha256 !== expected.sha256) {
    throw new BackupError(
      "INTEGRITY_ERROR",
      `read-back of ${objectKey} at ${client.where} does not match the manifest: ${got.size} bytes, sha256 ${got.sha256} (manifest: ${expected.size}, ${expected.sha256})`,
    );
  }
  if ((await client.getText(manifestKey)) !== manifestText) {
    throw new BackupError("INTEGRITY_ERROR", `read-back of ${manifestKey} at ${client.where} is not the manifest written`);
  }

  const offsite = { endpointHost: config.endpointHost, bucket: config.bucket, key: objectKey, manifestKey, sha256: got.sha256, verifiedAt: new Date().toISOString() };
  const recorded: Manifest = { ...manifest, offsite };
  // Re-signed: the signature covers everything but itself, the record included.
  recorded.signature = manifest.signature && opts.signingKey ? await signManifest(recorded, opts.signingKey) : manifest.signature;
  try {
    await opts.bucket.put(keys.manifest, JSON.stringify(recorded, null, 2), { httpMetadata: { contentType: "application/json" } });
  } catch (e) {
    throw new BackupError("STORAGE_ERROR", `the copy is verified but recording it in ${keys.manifest} failed: ${errorMessage(e)}`, { cause: e });
  }
  const ms = Date.now() - started;
  const w = await tryLogActivity(opts.db, {
    action: "offsite_copy_completed",
    userId: opts.actor,
    entityId: r2Key,
    details: { key: r2Key, endpoint: config.endpointHost, bucket: config.bucket, offsite_key: objectKey, size: got.size, sha256: got.sha256, duration_ms: ms },
  });
  if (w) console.error(w);
  return { name: entry.name, key: r2Key, bytes: got.size, ms, offsite, manifest: recorded };
}

/** The step the backup run calls after sealing (lib/backup OffsiteStep), bound to this entry point's parsed OFFSITE_S3_*. */
export function offsiteStep(offsite: OffsiteSetting, extra: { limit?: number; client?: OffsiteClientOptions } = {}): OffsiteStep | null {
  if (!offsite.config && !offsite.problem) return null;
  return async (ctx) => {
    const report = await copyMissingToOffsite({
      bucket: ctx.bucket,
      db: ctx.db,
      offsite,
      signingKey: ctx.signingKey,
      now: ctx.now,
      newest: ctx.newest,
      actor: ctx.actor,
      limit: extra.limit,
      client: { ...extra.client, heartbeat: ctx.heartbeat },
    });
    // Retention there after the copies, by its own listing; never at the cost of the backup.
    if (ctx.retention && offsite.config && !report.failed) {
      try {
        const client = new OffsiteClient(offsite.config, { ...extra.client, heartbeat: ctx.heartbeat });
        report.retention = await applyOffsiteRetention(client, ctx.retention, ctx.now);
        if (report.retention.leftToProvider) report.warnings.push(report.retention.leftToProvider);
      } catch (e) {
        report.warnings.push(`off-site retention failed (the backups are good; the next run tries again): ${errorMessage(e)}`);
      }
    }
    return report;
  };
}
