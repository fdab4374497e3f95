// Lists backups: complete ones (object + matching manifest) newest first, and incomplete leftovers
// (an object without manifest, a manifest without object, a staged upload) named separately.
import { BackupError, errorMessage, wrapBindingError } from "../errors";
import { BACKUP_PREFIX, keysFor, parseBackupKey } from "./keys";
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
      const g = groups.get(parsed.name) ?? { name: parsed.name, timestamp: parsed.timestamp };
      g[parsed.kind] = obj;
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
 * The newest complete backup, or null. Checks manifests newest first and stops at the first good
 * one, so it costs one listing and usually one manifest read, where listBackups reads every
 * manifest: the unauthenticated health endpoint must stay cheap however often it is called.
 */
export async function findNewestBackup(bucket: R2Bucket): Promise<BackupEntry | null> {
  for (const g of await groupBackupKeys(bucket)) {
    const c = await classify(bucket, g);
    if ("manifest" in c) return c;
  }
  return null;
}

async function classify(bucket: R2Bucket, g: Group): Promise<BackupEntry | IncompleteEntry> {
  const present = [g.object, g.manifest, g.staging].filter((o): o is R2Object => !!o);
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
  if (manifest.object.size !== g.object.size || manifest.object.sha256 !== g.object.customMetadata?.sha256) {
    return incomplete("manifest does not match the backup object");
  }
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
