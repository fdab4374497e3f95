// The manifest is what makes an object a backup: written last, it records what the object must
// be (size, checksums) and what it holds (tables, rows, schema version).
import { z } from "zod";
import { BackupError } from "../errors";

export const MANIFEST_FORMAT = "d1-backup-manifest";
export const MANIFEST_FORMAT_VERSION = 1;

const sha = z.string().regex(/^[0-9a-f]{64}$/);

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  formatVersion: z.number().int(),
  name: z.string(),
  createdAt: z.string(),
  completedAt: z.string(),
  durationMs: z.number(),
  trigger: z.string(),
  object: z.object({
    key: z.string(),
    size: z.number().int().nonnegative(),
    /** Of the object as stored: for "age+gzip" the encrypted bytes (the plain SQL's are in `sql`). */
    sha256: sha,
    /** Outermost layer first: "age+gzip" is an age file wrapping the gzip SQL (a `.sql.gz.age` key). */
    contentEncoding: z.enum(["gzip", "age+gzip"]),
  }),
  sql: z.object({
    size: z.number().int().nonnegative(),
    sha256: sha,
    statements: z.number().int().nonnegative(),
    dumpFormatVersion: z.number().int(),
  }),
  schema: z.object({
    latestMigration: z.string().nullable(),
    migrationsApplied: z.number().int(),
    tables: z.number().int(),
    indexes: z.number().int(),
    triggers: z.number().int(),
    views: z.number().int(),
  }),
  // checksum (checksum.ts) and sequences: optional, so manifests from before the restore drill parse.
  tables: z.array(z.object({ name: z.string(), rows: z.number().int().nonnegative(), checksum: sha.optional() })),
  sequences: z.array(z.object({ name: z.string(), seq: z.string() })).optional(),
  totalRows: z.number().int().nonnegative(),
  snapshot: z.object({
    mode: z.enum(["atomic", "paged"]),
    /** The dump is one state of the database (false only in manifests from before paged dumps were checked). */
    atomic: z.boolean(),
    // Optional: manifests written before consistency was recorded lack them and still parse.
    consistency: z.enum(["single-batch", "total_changes"]).optional(),
    reads: z.number().int().nonnegative().optional(),
    attempts: z.number().int().positive().optional(),
    databaseBytes: z.number().nullable(),
    budgetBytes: z.number(),
  }),
  // Who can decrypt the object (public keys only). Optional: manifests from before encryption lack
  // it and count as unencrypted; it must agree with object.contentEncoding (checked below).
  encryption: z.object({ scheme: z.literal("age"), recipients: z.array(z.string()).min(1) }).nullable().optional(),
  // Where the off-site copy is (lib/offsite), written after it was read back and its sha256 matched
  // object.sha256; re-signed with it. Optional: backups without a copy, and older manifests, lack it.
  offsite: z
    .object({ endpointHost: z.string(), bucket: z.string(), key: z.string(), manifestKey: z.string(), sha256: sha, verifiedAt: z.string() })
    .optional(),
  // Ed25519 over the rest of the manifest (signature.ts); null: made without BACKUP_SIGNING_KEY.
  // Optional so that manifests from before signing still parse (and count as unsigned).
  signature: z.object({ alg: z.literal("Ed25519"), keyId: z.string(), sig: z.string() }).nullable().optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** The manifest records an off-site copy whose read-back matched this backup's object. */
export function hasVerifiedOffsite(manifest: Manifest): boolean {
  return !!manifest.offsite && manifest.offsite.sha256 === manifest.object.sha256;
}

/** Parses manifest JSON, refusing other formats and newer versions with a clear message. */
export function parseManifest(text: string, source = "manifest"): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new BackupError("INTEGRITY_ERROR", `${source} is not valid JSON`);
  }
  const fmt = (raw as { format?: unknown; formatVersion?: unknown } | null) ?? {};
  if (fmt.format !== MANIFEST_FORMAT) {
    throw new BackupError("INTEGRITY_ERROR", `${source} is not a d1-backup manifest`);
  }
  if (typeof fmt.formatVersion === "number" && fmt.formatVersion > MANIFEST_FORMAT_VERSION) {
    throw new BackupError(
      "INTEGRITY_ERROR",
      `${source} has format version ${fmt.formatVersion}; this tool reads up to ${MANIFEST_FORMAT_VERSION}: upgrade d1-backup`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BackupError("INTEGRITY_ERROR", `${source} is malformed at ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  if ((parsed.data.object.contentEncoding === "age+gzip") !== !!parsed.data.encryption) {
    throw new BackupError("INTEGRITY_ERROR", `${source} is malformed at encryption: object.contentEncoding ${parsed.data.object.contentEncoding} and encryption disagree`);
  }
  return parsed.data;
}
