// Retention in the off-site bucket: the same GFS rule as R2 (lib/backup applyRetention), applied
// to the off-site bucket's own listing, so each bucket keeps its own newest-of-each-period set
// even when their contents differ (a copy that failed, a bucket restored from elsewhere). A key
// that may not delete (the least-privilege setup of BACKUP_SETUP.md) leaves retention there to
// the provider's lifecycle rule: reported, never a failure.
import {
  applyRetention,
  BackupError,
  errorMessage,
  isBackupError,
  parseBackupKey,
  type BackupStore,
  type RetentionListing,
  type RetentionPolicy,
} from "../backup";
import { offsiteKeyFor, r2KeyFor } from "./config";
import type { OffsiteClient } from "./s3";

/** The off-site bucket as a retention store, in R2 key names; keys that are not backups are not listed. */
export function offsiteStore(client: OffsiteClient): BackupStore {
  const config = client.config;
  return {
    async list(): Promise<RetentionListing> {
      const groups = new Map<string, { object?: string; manifest?: string; keys: string[]; uploaded: string }>();
      for (const o of await client.listObjects(config.prefix)) {
        const key = r2KeyFor(config, o.key);
        const parsed = key ? parseBackupKey(key) : null;
        if (!key || !parsed) continue; // not a backup: never touched
        const g = groups.get(parsed.name) ?? { keys: [], uploaded: o.lastModified };
        g.keys.push(key);
        if (parsed.kind === "object") g.object = key;
        if (parsed.kind === "manifest") g.manifest = key;
        if (o.lastModified > g.uploaded) g.uploaded = o.lastModified;
        groups.set(parsed.name, g);
      }
      const listing: RetentionListing = { backups: [], incomplete: [] };
      for (const [name, g] of groups) {
        // A copy is complete once its manifest is there (copy.ts writes it after the object).
        if (g.object && g.manifest) listing.backups.push({ name, key: g.object, manifestKey: g.manifest });
        else listing.incomplete.push({ name, keys: g.keys, uploaded: g.uploaded, reason: "an off-site copy that never got its manifest" });
      }
      listing.backups.sort((a, b) => (a.name < b.name ? 1 : -1));
      return listing;
    },
    delete: (key) => client.deleteObject(offsiteKeyFor(config, key)),
  };
}

export interface OffsiteRetentionReport {
  deleted: string[];
  incompleteDeleted: string[];
  kept: number;
  /** Set when retention there is left to the provider (the key may not delete). */
  leftToProvider: string | null;
}

/** Applies `policy` to the off-site bucket. Every complete copy there was read back when made. */
export async function applyOffsiteRetention(client: OffsiteClient, policy: RetentionPolicy, now: Date): Promise<OffsiteRetentionReport> {
  const progress = { deleted: [] as string[], incompleteDeleted: [] as string[] };
  try {
    // Every complete copy there is verified, so "the newest with a verified copy" is the newest.
    const { plan } = await applyRetention({ store: offsiteStore(client), now, policy, progress, offsiteVerified: () => true });
    return { ...progress, kept: plan.keep.length, leftToProvider: null };
  } catch (e) {
    const status = isBackupError(e) ? (e.details as { status?: number } | undefined)?.status : undefined;
    if (status === 403 && progress.deleted.length === 0 && progress.incompleteDeleted.length === 0) {
      return { ...progress, kept: 0, leftToProvider: `the off-site key may not delete (${errorMessage(e)}): retention there is the provider's lifecycle rule (BACKUP_SETUP.md)` };
    }
    throw isBackupError(e) ? e : new BackupError("STORAGE_ERROR", `off-site retention failed: ${errorMessage(e)}`, { cause: e });
  }
}
