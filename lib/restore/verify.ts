// Proves a downloaded backup is exactly what its manifest describes before anything is restored:
// the manifest is one this tool reads and belongs to the backup asked for, the object has the
// recorded size and sha256 (of the encrypted bytes, for an age object), it decrypts with the
// operator's age identity, the gzip decompresses completely, the SQL has the recorded sha256,
// it ends with the marker the dump writes last, and every statement in it is one the dump writer
// emits (lib/sql allowlist), so nothing else is ever run. Each failure has its own message and check
// name (details.check), so a person knows whether to re-download, pick another backup or report.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StringDecoder } from "node:string_decoder";
import zlib from "node:zlib";
import {
  AGE_MAGIC,
  BackupError,
  decryptStream,
  DUMP_END_MARKER,
  DUMP_FORMAT_VERSION,
  formatBytes,
  keysFor,
  parseManifest,
  verifyManifestSignature,
  type Manifest,
  type SignatureState,
  type VerifyKey,
} from "../backup";
import { DumpSqlCheck } from "../sql";
import type { FetchedBackup } from "./fetch";
import type { Reporter } from "./progress";

export interface VerificationCheck {
  check: string;
  ok: boolean;
  detail: string;
}

export interface VerifiedBackup {
  name: string | null;
  key: string;
  origin: string;
  manifest: Manifest | null;
  manifestOrigin: string;
  /** The verified plain SQL, ready to restore. */
  sqlFile: string;
  object: { size: number; sha256: string } | null;
  sql: { size: number; sha256: string };
  checks: VerificationCheck[];
  /** The manifest's signature as checked; `allowed`: not valid, restored anyway (--allow-unsigned). */
  signature: SignatureState & { allowed: boolean };
}

/** Which signatures a restore trusts: BACKUP_VERIFY_KEY / --verify-key, and --allow-unsigned. */
export interface Trust {
  verifyKeys: VerifyKey[];
  allowUnsigned?: boolean;
  /** age identities (--identity / AGE_IDENTITY_FILE) for an encrypted backup, with where they came from. */
  age?: { identities: string[]; source: string } | null;
}

const IDENTITY_HINT = "give the age identity with --identity FILE (or AGE_IDENTITY_FILE in the environment or .dev.vars; BACKUP_RESTORATION.md)";

/** A file as a web stream read 1 MiB at a time on demand (age-encryption takes web streams). */
function fileStream(file: string): ReadableStream<Uint8Array> {
  let fd: number | null = null;
  return new ReadableStream<Uint8Array>({
    start() {
      fd = fs.openSync(file, "r");
    },
    pull(controller) {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      const n = fs.readSync(fd as number, buf, 0, buf.length, null);
      if (n === 0) {
        fs.closeSync(fd as number);
        fd = null;
        controller.close();
      } else controller.enqueue(buf.subarray(0, n));
    },
    cancel() {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
    },
  });
}

function startsWithAgeMagic(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(AGE_MAGIC.length);
    return fs.readSync(fd, buf, 0, buf.length, 0) === buf.length && buf.toString("latin1") === AGE_MAGIC;
  } finally {
    fs.closeSync(fd);
  }
}

const ALLOW = "Restore it anyway only if you trust where it came from: --allow-unsigned (printed and logged)";

/** Why a signature state is not "valid", for the refusal and for the --allow-unsigned warning. */
function signatureProblem(s: SignatureState, origin: string, keys: VerifyKey[]): string | null {
  const ids = keys.map((k) => k.keyId).join(", ");
  switch (s.state) {
    case "valid":
      return null;
    case "unsigned":
      return `unsigned backup: ${origin} has no signature, so nothing proves its checksums were written by d1-backup (anyone who can write to the bucket can re-compute them)`;
    case "no-keys":
      return `cannot check the signature (key ${s.keyId}): no public key given. Set BACKUP_VERIFY_KEY (environment or .dev.vars) or pass --verify-key FILE (BACKUP_SETUP.md)`;
    case "unknown-key":
      return `signed by an unknown key: ${origin} is signed by key ${s.keyId}, which is not in BACKUP_VERIFY_KEY (${ids}). After a key rotation, list the old public key too; otherwise treat the backup as forged`;
    case "invalid":
      return `BAD SIGNATURE: ${origin} does not match its signature by key ${s.keyId}: the manifest was changed after it was signed. Do not restore it; report it`;
  }
}

function fail(check: string, message: string, details: Record<string, unknown> = {}): never {
  throw new BackupError("INTEGRITY_ERROR", message, { details: { check, ...details } });
}

async function hashFile(file: string, reporter: Reporter, what: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  const total = fs.statSync(file).size;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
    reporter.progress(`hashing ${what}: ${formatBytes(size)} of ${formatBytes(total)}`);
  }
  return { size, sha256: hash.digest("hex") };
}

/** Reads the manifest and checks it is one we can trust for this backup. */
export function checkManifest(text: string, origin: string, expectedName: string | null): Manifest {
  let manifest: Manifest;
  try {
    manifest = parseManifest(text, origin);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    fail("manifest-format", `unusable manifest: ${message}`);
  }
  if (manifest.sql.dumpFormatVersion > DUMP_FORMAT_VERSION) {
    fail(
      "manifest-format",
      `unsupported dump format: ${origin} says dump format ${manifest.sql.dumpFormatVersion}; this tool restores up to ${DUMP_FORMAT_VERSION}: upgrade d1-backup`,
    );
  }
  if (expectedName && manifest.name !== expectedName) {
    fail(
      "manifest-name",
      `manifest of another backup: ${origin} describes ${manifest.name}, not ${expectedName}. ` +
        "The manifest was copied or renamed; its checksums cannot vouch for this backup",
      { expected: expectedName, actual: manifest.name },
    );
  }
  const expectedKey = keysFor(manifest.name, { encrypted: manifest.object.contentEncoding === "age+gzip" }).object;
  if (manifest.object.key !== expectedKey) {
    fail("manifest-name", `manifest ${origin} names object ${manifest.object.key}, which is not the object of ${manifest.name}`);
  }
  return manifest;
}

export async function verifyBackup(fetched: FetchedBackup, workDir: string, reporter: Reporter, trust: Trust): Promise<VerifiedBackup> {
  const checks: VerificationCheck[] = [];
  const manifest = fetched.manifestText === null ? null : checkManifest(fetched.manifestText, fetched.manifestOrigin, fetched.name);
  if (manifest) {
    checks.push({
      check: "manifest",
      ok: true,
      detail: `format ${manifest.format} v${manifest.formatVersion}, dump format ${manifest.sql.dumpFormatVersion}, describes ${manifest.name}`,
    });
  } else {
    checks.push({ check: "manifest", ok: false, detail: "skipped: --no-manifest (the backup is UNVERIFIED: no checksums, no row counts)" });
  }

  // 0. The signature, first: until it verifies, nothing in the manifest is to be believed. Checked
  // on the manifest as stored (the raw JSON), so nothing a parse drops escapes it.
  const state: SignatureState =
    manifest && fetched.manifestText !== null
      ? await verifyManifestSignature(JSON.parse(fetched.manifestText), trust.verifyKeys)
      : { state: "unsigned" };
  const problem = manifest ? signatureProblem(state, fetched.manifestOrigin, trust.verifyKeys) : "no manifest, so no signature (--no-manifest)";
  if (problem && !trust.allowUnsigned) fail("signature", `${problem}. ${ALLOW}`, { state: state.state });
  if (problem) {
    reporter.warn(`!!! --allow-unsigned: ${problem}. RESTORING ANYWAY, as asked; this is logged.`);
    checks.push({ check: "signature", ok: false, detail: `NOT VERIFIED (${state.state}), restored because of --allow-unsigned: ${problem}` });
  } else {
    checks.push({ check: "signature", ok: true, detail: `Ed25519 signature by key ${(state as { keyId: string }).keyId} verifies` });
  }
  const signature = { ...state, allowed: !!problem };
  const name = fetched.name ?? manifest?.name ?? null;

  // An age object needs an identity; refused before any work, with no plaintext written. Without
  // a manifest the file itself says (its first line).
  const encrypted = fetched.objectFile
    ? manifest
      ? manifest.object.contentEncoding === "age+gzip"
      : startsWithAgeMagic(fetched.objectFile)
    : false;
  if (encrypted && !trust.age?.identities.length) {
    const to = manifest?.encryption ? ` (encrypted to ${manifest.encryption.recipients.join(", ")})` : "";
    throw new BackupError("INVALID_INPUT", `encrypted backup: ${fetched.key} is an age file${to}: ${IDENTITY_HINT}`, {
      details: { check: "identity" },
    });
  }

  // 1. The object: exactly the bytes the backup wrote.
  let object: { size: number; sha256: string } | null = null;
  if (fetched.objectFile) {
    object = fetched.objectHash ?? (await hashFile(fetched.objectFile, reporter, "backup object"));
    if (manifest) {
      if (object.size < manifest.object.size) {
        fail(
          "object-size",
          `truncated backup object: ${fetched.key} is ${object.size} bytes, its manifest says ${manifest.object.size}. ` +
            "The download or the upload was cut short: download again; if it stays short, use the previous backup",
          { expected: manifest.object.size, actual: object.size },
        );
      }
      if (object.size > manifest.object.size) {
        fail(
          "object-size",
          `corrupted backup object: ${fetched.key} is ${object.size} bytes, its manifest says ${manifest.object.size}: ` +
            "it is not the object this backup wrote",
          { expected: manifest.object.size, actual: object.size },
        );
      }
      if (object.sha256 !== manifest.object.sha256) {
        fail(
          "object-sha256",
          `corrupted backup object: sha256 of ${fetched.key} is ${object.sha256}, its manifest says ${manifest.object.sha256} ` +
            "(same size, different bytes). Do not restore it: download again, else use the previous backup, and report it",
          { expected: manifest.object.sha256, actual: object.sha256 },
        );
      }
      checks.push({ check: "object-sha256", ok: true, detail: `${formatBytes(object.size)}, sha256 ${object.sha256} matches the manifest` });
    }
  }

  // 2. Full decompression (or the plain file as given), hashing the SQL and keeping its tail. In
  // the same pass every statement is checked against what the dump writer emits (step 5).
  const sqlFile = fetched.plainFile ?? path.join(workDir, `${name ?? "backup"}.sql`);
  const plainHash = createHash("sha256");
  let plainSize = 0;
  let tail = Buffer.alloc(0);
  const statements = new DumpSqlCheck(
    manifest
      ? { tables: manifest.tables.map((t) => t.name), indexes: manifest.schema.indexes, views: manifest.schema.views, triggers: manifest.schema.triggers }
      : null,
  );
  const decoder = new StringDecoder("utf8");
  // The first refusal is kept and thrown after the checksums: a corrupted download says so first.
  let refused: unknown = null;
  const feed = (text: string, last = false) => {
    if (refused) return;
    try {
      statements.push(text);
      if (last) statements.end();
    } catch (e) {
      refused = e;
    }
  };
  const take = (chunk: Buffer) => {
    feed(decoder.write(chunk));
    plainHash.update(chunk);
    plainSize += chunk.length;
    tail = Buffer.concat([tail.subarray(-256), chunk.subarray(-256)]).subarray(-256);
    reporter.progress(`${fetched.plainFile ? "hashed" : "decompressed"} ${formatBytes(plainSize)}${manifest ? ` of ${formatBytes(manifest.sql.size)}` : ""}`);
  };
  if (fetched.objectFile) {
    const objectFile = fetched.objectFile;
    // Decrypted as a stream straight into gunzip: the gzip (and the SQL) only ever exist in the
    // private work directory, like an unencrypted backup's. A wrong identity fails here, on the header.
    const source = encrypted
      ? Readable.fromWeb((await decryptStream(fileStream(objectFile), trust.age!.identities, fetched.key)) as import("node:stream/web").ReadableStream<Uint8Array>)
      : fs.createReadStream(objectFile, { highWaterMark: 1024 * 1024 });
    if (encrypted) checks.push({ check: "decrypt", ok: true, detail: `age header opens with the identity from ${trust.age!.source}` });
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        take(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, zlib.createGunzip(), tap, fs.createWriteStream(sqlFile));
    } catch (e) {
      fs.rmSync(sqlFile, { force: true });
      const err = e as NodeJS.ErrnoException;
      // Every 64 KiB age chunk is authenticated: a changed or cut byte fails its chunk.
      if (encrypted && !err.code?.startsWith("Z_") && !err.syscall) {
        fail("decrypt", `corrupted age file: ${fetched.key} does not decrypt completely (${err.message}) after ${formatBytes(plainSize)} of SQL: use the previous backup`);
      }
      if (err.code === "Z_BUF_ERROR" || /unexpected end of file/i.test(err.message)) {
        fail(
          "gzip",
          `truncated gzip: ${fetched.key} ends in the middle of its gzip stream (${err.message}) after ${formatBytes(plainSize)} of SQL. ` +
            "The backup is incomplete: use the previous backup",
        );
      }
      if (err.code?.startsWith("Z_")) {
        fail("gzip", `corrupted gzip: ${fetched.key} does not decompress (${err.message}): use the previous backup`);
      }
      throw e;
    }
    checks.push({ check: "gzip", ok: true, detail: `decompresses completely to ${formatBytes(plainSize)}` });
  } else {
    // A plain SQL file was given: there is no object (gzip) to check, only the SQL itself.
    if (manifest) checks.push({ check: "object-sha256", ok: true, detail: "not applicable: a plain SQL file was given, not the .sql.gz object" });
    for await (const chunk of fs.createReadStream(sqlFile, { highWaterMark: 1024 * 1024 })) take(chunk as Buffer);
  }
  const sql = { size: plainSize, sha256: plainHash.digest("hex") };
  feed(decoder.end(), true);

  // 3. The SQL is the dump the backup wrote...
  if (manifest) {
    if (sql.sha256 !== manifest.sql.sha256 || sql.size !== manifest.sql.size) {
      fail(
        "sql-sha256",
        `corrupted SQL: the decompressed dump is ${sql.size} bytes with sha256 ${sql.sha256}; the manifest says ` +
          `${manifest.sql.size} bytes, ${manifest.sql.sha256}`,
        { expected: manifest.sql.sha256, actual: sql.sha256 },
      );
    }
    checks.push({ check: "sql-sha256", ok: true, detail: `${formatBytes(sql.size)} of SQL, sha256 matches the manifest` });
  }
  // 4. ...and it is complete: the marker is the last thing the dump writes.
  const lastLine = tail.toString("utf8").trimEnd().split("\n").pop() ?? "";
  if (lastLine !== DUMP_END_MARKER) {
    fail(
      "end-marker",
      `incomplete dump: the SQL does not end with "${DUMP_END_MARKER}" (last line: ${JSON.stringify(lastLine.slice(0, 80))}); ` +
        "it was cut short or is not a d1-backup dump",
    );
  }
  checks.push({ check: "end-marker", ok: true, detail: `ends with "${DUMP_END_MARKER}"` });
  // 5. Only dump SQL: nothing that reaches this point runs anything the backup writer would not write.
  if (refused) throw refused;
  checks.push({
    check: "statements",
    ok: true,
    detail: `${statements.statements} statements, each of a kind the backup writer emits${manifest ? ", for the tables and schema objects the manifest lists" : ""}`,
  });

  return {
    name,
    key: fetched.key,
    origin: fetched.origin,
    manifest,
    manifestOrigin: fetched.manifestOrigin,
    sqlFile,
    object,
    sql,
    checks,
    signature,
  };
}
