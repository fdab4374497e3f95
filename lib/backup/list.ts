// Lists backups: complete ones (object + matching manifest) newest first, and incomplete leftovers
// (an object without manifest, a manifest without object, a staged upload) named separately.
import { BackupError, errorMessage, wrapBindingError } from "../errors";
import { BACKUP_PREFIX, keysFor, parseBackupKey, timestampOf } from "./keys";
import { parseManifest, type Manifest } from "./manifest";

export interface BackupEntry {
  name: string;
  key: string;
  manifestKey: string;
  timestamp: string;
  uploaded: string;
  size: number;
  metadata: Record<string, string>;
  manifest: Manifest;
}

export interface IncompleteEntry {
  name: string;
  keys: string[];
  uploaded: string;
  size: number;
  reason: string;
}

export interface BackupListing {
  backups: BackupEntry[];
  incomplete: IncompleteEntry[];
}

interface Group {
  name: string;
  timestamp: Date;
  object?: R2Object;
  manifest?: R2Object;
  staging?: R2Object;
  /** A second object or staged copy under the other form (`.sql.gz` beside `.sql.gz.age`): never expected. */
  extra: R2Object[];
}

/** Every backup key in the bucket, grouped by backup name, newest first. */
async function groupBackupKeys(bucket: R2Bucket): Promise<Group[]> {
  const groups = new Map<string, Group>();
  let cursor: string | undefined;
  do {
    let page: R2Objects;
    try {
      page = await bucket.list({ prefix: BACKUP_PREFIX, cursor, include: ["customMetadata", "httpMetadata"] });
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", "listing backups failed", e);
    }
    for (const obj of page.objects) {
      const parsed = parseBackupKey(obj.key);
      if (!parsed) continue; // not ours: client documents and look-alikes are never touched
      const g = groups.get(parsed.name) ?? { name: parsed.name, timestamp: parsed.timestamp, extra: [] };
      if (g[parsed.kind]) g.extra.push(obj);
      else g[parsed.kind] = obj;
      groups.set(parsed.name, g);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return [...groups.values()].sort((a, b) => b.timestamp.getTime() - a.timestamp.getTime());
}

export async function listBackups(bucket: R2Bucket): Promise<BackupListing> {
  const sorted = await groupBackupKeys(bucket);
  const checked = await Promise.all(sorted.map((g) => classify(bucket, g)));
  return {
    backups: checked.filter((c): c is BackupEntry => "manifest" in c),
    incomplete: checked.filter((c): c is IncompleteEntry => "reason" in c),
  };
}

/**
 * How far in the future a backup's name may be before it is taken for a clock fault: more than any
 * run lasts plus the clock differences checkClock (lock.ts) lets through.
 */
export const FUTURE_TOLERANCE_MS = 10 * 60 * 1000;
/** Leftovers last written longer ago than this mean retention is not removing them. */
export const LEFTOVER_ATTENTION_MS = 24 * 60 * 60 * 1000;

/** A backup whose name is more than FUTURE_TOLERANCE_MS after `now`: never the newest, never deleted automatically. */
export function isFutureDated(name: string, now: Date): boolean {
  const t = timestampOf(name);
  return !!t && t.getTime() > now.getTime() + FUTURE_TOLERANCE_MS;
}

/** What health needs from the bucket; the same from a full listing (scanListing) or the cheap findNewestBackup. */
export interface BackupScan {
  /** The newest complete backup not dated in the future, or null. */
  newest: BackupEntry | null;
  /**
   * Backups newer than `newest` (and not future-dated) that have a manifest yet fail verification:
   * object missing, size or sha256 not the manifest's, manifest unreadable. Newest first.
   */
  damaged: IncompleteEntry[];
  /** Names of backups (complete or not) dated in the future, newest first. */
  future: string[];
  /** Leftovers of interrupted runs (an object or manifest alone, a staged upload) older than a day. */
  oldLeftovers: string[];
}

function isOldLeftover(name: string, kinds: Set<string>, uploaded: number, now: Date): boolean {
  if (kinds.has("object") && kinds.has("manifest")) return false; // a mismatch: damaged, not a leftover
  // The same age as retention's: last write or name, whichever is later (a future name does not count).
  const t = timestampOf(name);
  const byName = t && !isFutureDated(name, now) ? t.getTime() : 0;
  return Math.max(uploaded, byName) < now.getTime() - LEFTOVER_ATTENTION_MS;
}

const kindsOf = (keys: string[]) => new Set(keys.map((k) => parseBackupKey(k)?.kind ?? ""));

/** The BackupScan of a listing already made (the admin health lists anyway). */
export function scanListing(listing: BackupListing, now: Date): BackupScan {
  const newest = listing.backups.find((b) => !isFutureDated(b.name, now)) ?? null;
  const newestMs = newest ? (timestampOf(newest.name)?.getTime() ?? 0) : -Infinity;
  const names = [...listing.backups.map((b) => b.name), ...listing.incomplete.map((e) => e.name)];
  return {
    newest,
    damaged: listing.incomplete.filter(
      (e) => !isFutureDated(e.name, now) && kindsOf(e.keys).has("manifest") && (timestampOf(e.name)?.getTime() ?? 0) > newestMs,
    ),
    future: names.filter((n) => isFutureDated(n, now)).sort().reverse(),
    oldLeftovers: listing.incomplete.filter((e) => isOldLeftover(e.name, kindsOf(e.keys), Date.parse(e.uploaded), now)).map((e) => e.name),
  };
}

/**
 * The BackupScan from one listing and, usually, one manifest read: manifests are checked newest
 * first only until the first good one, where listBackups reads every manifest. The unauthenticated
 * health endpoint must stay cheap however often it is called; the answer equals scanListing's.
 */
export async function findNewestBackup(bucket: R2Bucket, now: Date = new Date()): Promise<BackupScan> {
  const groups = await groupBackupKeys(bucket);
  const scan: BackupScan = { newest: null, damaged: [], future: [], oldLeftovers: [] };
  for (const g of groups) {
    const present = [g.object, g.manifest, g.staging, ...g.extra].filter((o): o is R2Object => !!o);
    if (isFutureDated(g.name, now)) scan.future.push(g.name);
    const kinds = kindsOf(present.map((o) => o.key));
    if (isOldLeftover(g.name, kinds, Math.max(...present.map((o) => o.uploaded.getTime())), now)) scan.oldLeftovers.push(g.name);
  }
  for (const g of groups) {
    if (isFutureDated(g.name, now)) continue;
    const c = await classify(bucket, g);
    if ("manifest" in c) {
      scan.newest = c;
      break;
    }
    if (g.manifest) scan.damaged.push(c);
  }
  return scan;
}

async function classify(bucket: R2Bucket, g: Group): Promise<BackupEntry | IncompleteEntry> {
  const present = [g.object, g.manifest, g.staging, ...g.extra].filter((o): o is R2Object => !!o);
  const incomplete = (reason: string): IncompleteEntry => ({
    name: g.name,
    keys: present.map((o) => o.key),
    uploaded: new Date(Math.max(...present.map((o) => o.uploaded.getTime()))).toISOString(),
    size: present.reduce((n, o) => n + o.size, 0),
    reason,
  });
  if (!g.object) return incomplete(g.manifest ? "manifest without backup object" : "staged upload never finished");
  if (!g.manifest) return incomplete(g.staging ? "backup interrupted before its manifest" : "backup object without manifest");
  let manifest: Manifest;
  try {
    manifest = await readManifest(bucket, g.name);
  } catch (e) {
    return incomplete(`unreadable manifest: ${errorMessage(e)}`);
  }
  if (g.extra.some((o) => parseBackupKey(o.key)?.kind === "object")) return incomplete("two backup objects (plain and encrypted) for one name");
  // Plain or encrypted: the manifest names which object it describes.
  if (manifest.object.key !== g.object.key) return incomplete(`the manifest describes ${manifest.object.key}, not ${g.object.key}`);
  if (manifest.object.size !== g.object.size || manifest.object.sha256 !== g.object.customMetadata?.sha256) {
    return incomplete("manifest does not match the backup object");
  }
  // R2's own checksum, when the object was written with one (single-part puts): an object replaced
  // behind our back keeps no custom metadata, but one copied with it would still be caught here.
  const stored = g.object.checksums?.sha256;
  if (stored && hex(stored) !== manifest.object.sha256) return incomplete("the backup object's R2 checksum does not match its manifest");
  return {
    name: g.name,
    key: g.object.key,
    manifestKey: g.manifest.key,
    timestamp: manifest.createdAt,
    uploaded: g.object.uploaded.toISOString(),
    size: g.object.size,
    metadata: g.object.customMetadata ?? {},
    manifest,
  };
}

/** Reads and validates one backup's manifest. */
export async function readManifest(bucket: R2Bucket, name: string): Promise<Manifest> {
  const key = keysFor(name).manifest;
  let obj: R2ObjectBody | null;
  try {
    obj = await bucket.get(key);
  } catch (e) {
    throw wrapBindingError("STORAGE_ERROR", `reading ${key} failed`, e);
  }
  if (!obj) throw new BackupError("NOT_FOUND", `no manifest for backup ${name}`);
  const manifest = parseManifest(await obj.text(), key);
  if (manifest.name !== name) {
    throw new BackupError("INTEGRITY_ERROR", `${key} describes backup ${manifest.name}, not ${name}`);
  }
  return manifest;
}

function hex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
