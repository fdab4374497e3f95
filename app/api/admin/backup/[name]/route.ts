// One backup: GET = its manifest; ?download=1 = the gzipped SQL dump (an age file of it when the
// backup is encrypted: `.sql.gz.age`, decrypted only by the restore CLI), streamed from R2.
// The bucket also holds client documents, so the name is checked twice before any R2 read: the raw
// path segment must be a plain file name (no percent-escapes, so no encoded "/" or ".."), and
// parseBackupName (lib/backup/keys.ts, the only key parser) must accept it. Keys are then built by
// keysFor (the manifest says which of the two object forms; it must be one of them); nothing from
// the URL is ever used as a key.
import { z } from "zod";
import { allObjectKeysFor, BackupError, objectFileName, parseBackupName, readManifest, wrapBindingError } from "../../../../../lib/backup";
import { adminRoute, flag } from "../../../../../lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const query = z.object({ download: flag.optional() }).strict();
const SEGMENT_RE = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * The backup name from the request's own path, not from Next's decoded params: params are
 * percent-decoded, which would turn `backups%2Fdatabase-…` into a key with a slash in it.
 */
function backupNameFrom(url: URL): string {
  const segment = url.pathname.replace(/\/+$/, "").split("/").pop() ?? "";
  const name = SEGMENT_RE.test(segment) ? parseBackupName(segment) : null;
  if (!name) {
    throw new BackupError(
      "INVALID_INPUT",
      "not a backup name: expected database-YYYY-MM-DD-HH-MM-SS (optionally with .sql.gz, .sql.gz.age or .manifest.json)",
    );
  }
  return name;
}

export const GET = adminRoute(
  "GET /api/admin/backup/[name]",
  { query, path: backupNameFrom, routeParams: ["name"] },
  async ({ path: name, query: { download }, bindings: { bucket } }) => {
    // Only complete backups are served: the manifest (written last) must exist and match.
    const manifest = await readManifest(bucket, name);
    if (!download) return manifest;

    const key = manifest.object.key;
    if (!allObjectKeysFor(name).objects.includes(key)) throw new BackupError("INTEGRITY_ERROR", `the manifest of ${name} names ${key}, not its object`);
    const encrypted = manifest.object.contentEncoding === "age+gzip";
    let object: R2ObjectBody | null;
    try {
      object = await bucket.get(key);
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", `reading ${key} failed`, e);
    }
    if (!object) throw new BackupError("NOT_FOUND", `backup ${name} has a manifest but no object`);
    if (object.size !== manifest.object.size || object.customMetadata?.sha256 !== manifest.object.sha256) {
      // Cancel the body we will not send, so the R2 read is not left open.
      await object.body.cancel();
      throw new BackupError("INTEGRITY_ERROR", `backup ${name} does not match its manifest`);
    }
    return new Response(object.body, {
      headers: {
        "content-type": encrypted ? "application/octet-stream" : "application/gzip",
        "content-disposition": `attachment; filename="${objectFileName(key)}"`,
        // Set, but on Pages it does not reach the client: Next.js pipes every edge route's body
        // through a TransformStream, and workerd frames a stream of unknown length as chunked,
        // dropping a hand-set Content-Length. x-backup-size carries the exact size regardless.
        "content-length": String(object.size),
        "x-backup-size": String(object.size),
        "x-backup-sha256": manifest.object.sha256,
        etag: object.httpEtag,
        "cache-control": "no-store",
      },
    });
  },
);
