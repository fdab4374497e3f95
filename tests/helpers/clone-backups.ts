// Many backups fast: copies of one real backup under other names and times, written as a backup
// is sealed (object with its metadata, then manifest). For tests of what retention, listing and
// health decide from names and manifests; the object bytes (and so their checksums) are the real one's.
import { backupNameFor, keysFor } from "../../lib/backup/keys";

export async function cloneBackup(bucket: R2Bucket, sourceName: string, at: Date[]): Promise<string[]> {
  const from = keysFor(sourceName);
  const object = await bucket.get(from.object);
  const manifestObj = await bucket.get(from.manifest);
  if (!object || !manifestObj) throw new Error(`cloneBackup: ${sourceName} is not a complete backup`);
  const body = new Uint8Array(await object.arrayBuffer());
  const manifest = JSON.parse(await manifestObj.text());
  const made: string[] = [];
  for (let i = 0; i < at.length; i += 16) {
    await Promise.all(
      at.slice(i, i + 16).map(async (t) => {
        const keys = keysFor(backupNameFor(t));
        await bucket.put(keys.object, body, { httpMetadata: object.httpMetadata, customMetadata: { ...object.customMetadata, "backup-timestamp": t.toISOString() } });
        const m = { ...manifest, name: keys.name, createdAt: t.toISOString(), completedAt: t.toISOString(), object: { ...manifest.object, key: keys.object } };
        await bucket.put(keys.manifest, JSON.stringify(m, null, 2));
        made.push(keys.object);
      }),
    );
  }
  return made;
}
