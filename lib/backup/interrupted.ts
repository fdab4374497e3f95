// What happens around a lease (lock.ts): the bucket and database a leased run works through, which
// record its multipart uploads in the lease row and renew the lease between parts and between
// queries; and the clean-up after a run that died holding its lease, done by the run that takes
// the lease over.
import { tryLogActivity } from "./activity";
import { errorMessage } from "../errors";
import { allObjectKeysFor, keysFor, parseBackupName } from "./keys";
import { ownerLabel, type ExpiredLease, type Lease } from "./lock";

/**
 * The bucket as a leased run sees it: every write first checks the lease is still held (a run
 * whose lease was taken over must not write beside the new holder), uploads are recorded in the
 * lease row while open, and each part renews the lease if due. Reads pass straight through.
 * `return await`, not `return`: workerd reports a rejection as unhandled in the tick before a
 * returned promise is adopted.
 */
export function leasedBucket(bucket: R2Bucket, lease: Lease): R2Bucket {
  const guard = async () => {
    lease.assertHeld();
    await lease.renewIfDue();
    lease.assertHeld();
  };
  const track = (u: R2MultipartUpload): R2MultipartUpload => ({
    key: u.key,
    uploadId: u.uploadId,
    uploadPart: async (n, value, options) => {
      await guard();
      return await u.uploadPart(n, value, options);
    },
    complete: async (parts) => {
      await guard();
      const done = await u.complete(parts);
      await lease.forgetUpload(u.uploadId);
      return done;
    },
    abort: async () => {
      await u.abort();
      await lease.forgetUpload(u.uploadId);
    },
  });
  return {
    head: (key) => bucket.head(key),
    get: ((key: string, options?: R2GetOptions) => bucket.get(key, options)) as R2Bucket["get"],
    list: (options) => bucket.list(options),
    put: (async (key: string, value: Parameters<R2Bucket["put"]>[1], options?: R2PutOptions) => {
      await guard();
      return await bucket.put(key, value, options);
    }) as R2Bucket["put"],
    delete: async (keys) => {
      await guard();
      return await bucket.delete(keys);
    },
    createMultipartUpload: async (key, options) => {
      await guard();
      const upload = await bucket.createMultipartUpload(key, options);
      // Recorded before the first part: a crash from here on leaves an upload the next run can abort.
      await lease.noteUpload(key, upload.uploadId);
      return track(upload);
    },
    resumeMultipartUpload: (key, uploadId) => track(bucket.resumeMultipartUpload(key, uploadId)),
  };
}

/**
 * The database as a leased run sees it: each statement it prepares first renews the lease if due
 * (without waiting for the write). The dump reads D1 page by page, so this beats between steps; a
 * timer alone did not: in workerd it never fired during a 14 s dump (400k rows), and the lease lapsed.
 */
export function leasedDb(db: D1Database, lease: Lease): D1Database {
  const beat = () => void lease.renewIfDue();
  return {
    prepare: (sql: string) => {
      beat();
      return db.prepare(sql);
    },
    batch: <T>(statements: D1PreparedStatement[]) => {
      beat();
      return db.batch<T>(statements);
    },
    exec: (sql: string) => {
      beat();
      return db.exec(sql);
    },
    dump: () => db.dump(),
    withSession: (...args: Parameters<D1Database["withSession"]>) => db.withSession(...args),
  };
}

export interface InterruptedRunReport {
  /** The dead run's owner label and start, for messages. */
  owner: string;
  startedAt: string;
  /** The backup it was writing (null for a cleanup, or a row without state). */
  name: string | null;
  /** true when its backup turned out complete (it died after the manifest): nothing was lost. */
  completed: boolean;
  /** Keys deleted and uploads aborted. */
  deleted: string[];
  aborted: { key: string; uploadId: string }[];
  /** What could not be cleaned (left to retention and R2's own expiry of unfinished uploads). */
  warnings: string[];
}

/**
 * Logs and cleans up after a run whose lease expired unreleased. Called by the run that took the
 * lease over, before it does its own work. Never throws: the leftovers of a dead run must not stop
 * tonight's backup; what cannot be removed is reported (and retention removes it later).
 */
export async function recoverInterruptedRun(db: D1Database, bucket: R2Bucket, dead: ExpiredLease): Promise<InterruptedRunReport> {
  const label = ownerLabel(dead.owner);
  const [trigger, ...actorParts] = label.split(":");
  const actor = actorParts.join(":") || null;
  const state = dead.state;
  const name = state?.name && parseBackupName(state.name) === state.name ? state.name : null;
  const report: InterruptedRunReport = { owner: label, startedAt: dead.startedAt, name, completed: false, deleted: [], aborted: [], warnings: [] };

  if (name) {
    const keys = keysFor(name);
    // The dead run wrote the plain or the age form (BACKUP_AGE_RECIPIENTS then): look for both.
    const forms = allObjectKeysFor(name);
    try {
      const [manifest, ...objects] = await Promise.all([bucket.head(keys.manifest), ...forms.objects.map((k) => bucket.head(k))]);
      const found = objects.filter((o): o is R2Object => !!o).map((o) => o.key);
      report.completed = found.length > 0 && !!manifest;
      // The manifest is written last: without it the object is no backup, only a leftover.
      const leftovers = report.completed ? forms.staging : [...forms.staging, ...(manifest ? [] : found)];
      await bucket.delete(leftovers);
      report.deleted.push(...leftovers);
    } catch (e) {
      report.warnings.push(`removing what ${name} left failed: ${errorMessage(e)}`);
    }
  }

  // A complete backup's uploads all finished before its manifest was written: nothing is open.
  for (const u of report.completed ? [] : (state?.uploads ?? [])) {
    // Only uploads under backups/ are ours to abort, whatever the row says.
    if (!u.key.startsWith("backups/")) continue;
    try {
      await bucket.resumeMultipartUpload(u.key, u.uploadId).abort();
      report.aborted.push(u);
    } catch (e) {
      report.warnings.push(`aborting upload ${u.uploadId} of ${u.key} failed: ${errorMessage(e)}`);
    }
  }

  const reason =
    `interrupted: the ${state?.op ?? "backup or cleanup"} run of ${label} started at ${dead.startedAt} ` +
    `stopped renewing its lease (expired ${dead.expiresAt}) without finishing`;
  const details = {
    trigger: trigger || null,
    code: "INTERRUPTED",
    reason,
    startedAt: dead.startedAt,
    expiredAt: dead.expiresAt,
    left: { staging: name ? keysFor(name).staging : null, uploads: state?.uploads ?? [] },
    deleted: report.deleted,
    aborted: report.aborted,
    warnings: report.warnings,
  };
  if (state?.op === "cleanup") {
    await tryLogActivity(db, { action: "backup_cleanup_failed", userId: actor, details });
  } else if (!report.completed) {
    const key = name ? keysFor(name).object : null;
    await tryLogActivity(db, { action: "database_backup_failed", userId: actor, entityId: key, details: { ...details, key } });
  }
  for (const w of report.warnings) console.warn(w);
  return report;
}
