// Gets a backup's object and manifest onto local disk: from the local R2 state (the same state
// `wrangler --local` uses), from the real bucket through `wrangler r2 object get --remote`, or
// from files the operator already has. Objects are streamed to a temp file and hashed while being
// written, so a multi-gigabyte backup never sits in memory.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { allObjectKeysFor, BackupError, errorMessage, formatBytes, keysFor, objectFileName, parseBackupName } from "../backup";
import { openLocalPlatform } from "../local";
import { BUCKET_NAME } from "../names";
import { OffsiteClient, offsiteKeyFor, type OffsiteConfig } from "../offsite";
import { cleanToolOutput, fileExists, wrangler, wranglerCommand } from "./exec";
import type { Reporter } from "./progress";


export type BackupSource =
  /** The R2 bucket in a local state directory (default: .wrangler/state). */
  | { kind: "local"; name: string; persistTo?: string; bucket?: string }
  /** The real bucket, through wrangler (needs a Cloudflare login or API token). */
  | { kind: "remote"; name: string; bucket?: string }
  /** The off-site copy (OFFSITE_S3_*), read over S3 with no Cloudflare at all. */
  | { kind: "offsite"; name: string; config: OffsiteConfig }
  /** A `.sql.gz`, `.sql.gz.age` or plain `.sql` file on disk, with its manifest (default: beside it). */
  | { kind: "file"; file: string; manifestFile?: string; name?: string; noManifest?: boolean };

export interface FetchedBackup {
  /** The backup asked for (null: a file whose name is not a backup name, and no name given). */
  name: string | null;
  /** Where it came from, for people. */
  origin: string;
  /** The R2 key of the object (or the file path). */
  key: string;
  /** The object on disk (gzip, or age around gzip), or null when a plain SQL file was given. */
  objectFile: string | null;
  /** A plain SQL file given directly (no gzip layer to check). */
  plainFile: string | null;
  /** Size and sha256 of the object file, when computed while downloading. */
  objectHash: { size: number; sha256: string } | null;
  /** The manifest's text, or null with --no-manifest. */
  manifestText: string | null;
  manifestOrigin: string;
}

/** Where a person sees which backups exist, for "not found" messages. */
function listHint(where: string): string {
  return where.includes("(remote)")
    ? "the backups there are listed by GET /api/admin/backup (or the dashboard)"
    : "see the backups there with npm run backup -- --list";
}

function missingManifest(name: string, where: string, objectExists: boolean | null): BackupError {
  const key = keysFor(name).manifest;
  const why =
    objectExists === false
      ? `and there is no backup object either: no such backup (${listHint(where)})`
      : objectExists
        ? "but the backup object exists: the backup is incomplete (interrupted before its manifest was written, or the manifest was deleted)"
        : "";
  return new BackupError(
    "NOT_FOUND",
    `missing manifest: ${key} was not found in ${where}${why ? `, ${why}` : ""}. ` +
      "Without its manifest a backup cannot be verified, so it is not restored: pick another backup " +
      "(or, as a last resort, restore the file with --file … --no-manifest)",
    { details: { check: "manifest-present", name, key } },
  );
}

/**
 * The object key the manifest names (plain `.sql.gz` or encrypted `.sql.gz.age`). Anything else,
 * or a manifest that does not parse, falls back to the plain key: verification then refuses the
 * manifest with its own message, and no key from a file is ever used unchecked.
 */
function objectKeyOf(name: string, manifestText: string): string {
  try {
    const key = (JSON.parse(manifestText) as { object?: { key?: unknown } } | null)?.object?.key;
    if (typeof key === "string" && allObjectKeysFor(name).objects.includes(key)) return key;
  } catch {
    // verifyBackup says what is wrong with it
  }
  return keysFor(name).object;
}

function missingObject(name: string, where: string, key: string = keysFor(name).object): BackupError {
  return new BackupError("NOT_FOUND", `backup object ${key} was not found in ${where} (${listHint(where)})`, {
    details: { check: "object-present", name, key },
  });
}

export async function fetchBackup(source: BackupSource, workDir: string, reporter: Reporter): Promise<FetchedBackup> {
  if (source.kind === "file") return fromFile(source);
  const name = parseBackupName(source.name);
  if (!name) {
    throw new BackupError(
      "INVALID_INPUT",
      `"${source.name}" is not a backup name: expected database-YYYY-MM-DD-HH-MM-SS, database-….sql.gz or backups/database-….sql.gz`,
    );
  }
  if (source.kind === "offsite") return fromOffsite(name, source.config, workDir, reporter);
  return source.kind === "local" ? fromLocalR2(name, source, workDir, reporter) : fromRemote(name, source, workDir, reporter);
}

/** A bucket a backup is read from (local R2 or the off-site S3 bucket) and how it says what is missing. */
interface BackupStoreReader {
  where: string;
  /** The key in this bucket of a backup's R2 key. */
  key(r2Key: string): string;
  text(key: string): Promise<string | null>;
  exists(key: string): Promise<boolean>;
  body(key: string): Promise<{ body: AsyncIterable<Uint8Array>; size: number } | null>;
  missingManifest(manifestKey: string, objectExists: boolean): BackupError;
  missingObject(objectKey: string): BackupError;
}

/** The manifest, then the object it names (plain or age form), streamed to a file in workDir. */
async function fromStore(name: string, store: BackupStoreReader, workDir: string, reporter: Reporter): Promise<FetchedBackup> {
  const manifestKey = store.key(keysFor(name).manifest);
  const manifestText = await store.text(manifestKey);
  if (manifestText === null) {
    const heads = await Promise.all(allObjectKeysFor(name).objects.map((k) => store.exists(store.key(k))));
    throw store.missingManifest(manifestKey, heads.some(Boolean));
  }
  const r2Key = objectKeyOf(name, manifestText);
  const objectKey = store.key(r2Key);
  const obj = await store.body(objectKey);
  if (!obj) throw store.missingObject(objectKey);
  const objectFile = path.join(workDir, objectFileName(r2Key));
  const objectHash = await download(obj.body, objectFile, obj.size, reporter);
  return {
    name,
    origin: store.where,
    key: objectKey,
    objectFile,
    plainFile: null,
    objectHash,
    manifestText,
    manifestOrigin: `${manifestKey} in ${store.where}`,
  };
}

async function fromLocalR2(
  name: string,
  source: { persistTo?: string; bucket?: string },
  workDir: string,
  reporter: Reporter,
): Promise<FetchedBackup> {
  const where = `the local R2 state${source.persistTo ? ` in ${source.persistTo}` : " (.wrangler/state)"}`;
  const platform = await openLocalPlatform({ persistTo: source.persistTo });
  try {
    const bucket = platform.env.DOCUMENTS;
    return await fromStore(
      name,
      {
        where,
        key: (k) => k,
        text: async (k) => (await bucket.get(k))?.text() ?? null,
        exists: async (k) => !!(await bucket.head(k)),
        body: async (k) => {
          const obj = await bucket.get(k);
          return obj && { body: obj.body as unknown as AsyncIterable<Uint8Array>, size: obj.size };
        },
        missingManifest: (_key, objectExists) => missingManifest(name, where, objectExists),
        missingObject: (key) => missingObject(name, where, key),
      },
      workDir,
      reporter,
    );
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError("STORAGE_ERROR", `reading backup ${name} from ${where} failed: ${errorMessage(e)}`, { cause: e });
  } finally {
    await platform.dispose();
  }
}

/** Streams a body to a file, hashing it on the way (never held in memory). */
async function download(body: AsyncIterable<Uint8Array>, file: string, total: number, reporter: Reporter): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  const out = fs.createWriteStream(file);
  try {
    for await (const chunk of body) {
      hash.update(chunk);
      size += chunk.length;
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      reporter.progress(`downloaded ${formatBytes(size)}${Number.isFinite(total) ? ` of ${formatBytes(total)}` : ""}`);
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  return { size, sha256: hash.digest("hex") };
}

async function fromOffsite(name: string, config: OffsiteConfig, workDir: string, reporter: Reporter): Promise<FetchedBackup> {
  const client = new OffsiteClient(config);
  const where = `the off-site bucket ${client.where}`;
  const hint = "the dashboard's off-site column shows which backups have a verified copy";
  return fromStore(
    name,
    {
      where,
      key: (k) => offsiteKeyFor(config, k),
      text: (k) => client.getText(k),
      exists: async (k) => !!(await client.headObject(k)),
      body: async (k) => {
        const obj = await client.getObject(k);
        return obj && { body: obj.body as unknown as AsyncIterable<Uint8Array>, size: obj.size };
      },
      missingManifest: (key, objectExists) =>
        new BackupError(
          "NOT_FOUND",
          `missing manifest: ${key} was not found in ${where}` +
            (objectExists
              ? ", but the backup object exists: its copy is incomplete (the run that copied it failed before the manifest); pick another backup"
              : `, and there is no backup object either: no such backup there (${hint})`),
          { details: { check: "manifest-present", name, key } },
        ),
      missingObject: (key) => new BackupError("NOT_FOUND", `backup object ${key} was not found in ${where} (${hint})`, { details: { check: "object-present", name, key } }),
    },
    workDir,
    reporter,
  );
}

/** `wrangler r2 object get BUCKET/KEY --remote --file F`, with a NOT_FOUND for a missing key. */
async function wranglerGet(bucket: string, key: string, file: string): Promise<"ok" | "missing"> {
  const args = ["r2", "object", "get", `${bucket}/${key}`, "--remote", "--file", file];
  const res = await wrangler(args);
  if (res.code === 0) return "ok";
  const message = cleanToolOutput(res.stderr || res.stdout);
  fs.rmSync(file, { force: true }); // wrangler leaves an empty file behind on failure
  if (/specified key does not exist|NoSuchKey|\b404\b/i.test(message)) return "missing";
  throw new BackupError("STORAGE_ERROR", `${wranglerCommand(args)} failed: ${message.split("\n").slice(-3).join(" ")}`);
}

async function fromRemote(name: string, source: { bucket?: string }, workDir: string, reporter: Reporter): Promise<FetchedBackup> {
  const bucket = source.bucket ?? BUCKET_NAME;
  const keys = keysFor(name);
  const where = `the R2 bucket ${bucket} (remote)`;
  const manifestFile = path.join(workDir, `${name}.manifest.json`);
  if ((await wranglerGet(bucket, keys.manifest, manifestFile)) === "missing") throw missingManifest(name, where, null);
  const manifestText = fs.readFileSync(manifestFile, "utf8");
  const objectKey = objectKeyOf(name, manifestText);
  const objectFile = path.join(workDir, objectFileName(objectKey));
  // wrangler writes the file itself; show its growth so a long download is visibly alive.
  const timer = setInterval(() => {
    const size = fileExists(objectFile) ? fs.statSync(objectFile).size : 0;
    reporter.progress(`downloaded ${formatBytes(size)}`);
  }, 1000);
  try {
    if ((await wranglerGet(bucket, objectKey, objectFile)) === "missing") throw missingObject(name, where, objectKey);
  } finally {
    clearInterval(timer);
  }
  return {
    name,
    origin: where,
    key: objectKey,
    objectFile,
    plainFile: null,
    objectHash: null, // hashed by the verification pass
    manifestText,
    manifestOrigin: `${keys.manifest} in ${where}`,
  };
}

function fromFile(source: { file: string; manifestFile?: string; name?: string; noManifest?: boolean }): FetchedBackup {
  const file = path.resolve(source.file);
  if (!fileExists(file)) throw new BackupError("NOT_FOUND", `backup file ${file} does not exist`, { details: { check: "object-present" } });
  const base = path.basename(file);
  const fromFileName = parseBackupName(base.replace(/\.sql$/, ""));
  const requested = source.name ? parseBackupName(source.name) : fromFileName;
  if (source.name && !requested) throw new BackupError("INVALID_INPUT", `"${source.name}" is not a backup name`);
  const plain = /\.sql$/i.test(base);

  let manifestText: string | null = null;
  let manifestOrigin = "(none: --no-manifest)";
  if (!source.noManifest) {
    const candidate = source.manifestFile
      ? path.resolve(source.manifestFile)
      : fromFileName
        ? path.join(path.dirname(file), `${fromFileName}.manifest.json`)
        : null;
    if (!candidate || !fileExists(candidate)) {
      throw new BackupError(
        "NOT_FOUND",
        `missing manifest: ${candidate ? `${candidate} does not exist` : `no manifest beside ${base} (its name is not a backup name)`}. ` +
          "Give it with --manifest FILE (download backups/<name>.manifest.json with the object), " +
          "or restore unverified with --no-manifest (only the gzip and the end marker are checked)",
        { details: { check: "manifest-present", file } },
      );
    }
    manifestText = fs.readFileSync(candidate, "utf8");
    manifestOrigin = candidate;
  }
  return {
    name: requested,
    origin: file,
    key: file,
    objectFile: plain ? null : file,
    plainFile: plain ? file : null,
    objectHash: null,
    manifestText,
    manifestOrigin,
  };
}
