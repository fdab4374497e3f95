// Signed manifests. The manifest holds the object's and the SQL's sha256, so a signature over the
// manifest covers the data: someone who can write to the bucket (it is shared with client
// documents) can re-compute every hash, but cannot sign. Ed25519 through WebCrypto only, which
// workerd (Pages, cron Worker) and Node 20 (the restore CLI) both implement, so the same code
// signs and verifies everywhere.
//
// Keys are text: the secret BACKUP_SIGNING_KEY is base64 PKCS#8 DER (what `npm run keys` prints,
// or `openssl genpkey -algorithm ed25519 -outform DER | base64 -w0`); the public BACKUP_VERIFY_KEY
// is base64 SPKI DER, one or more (comma or whitespace separated) so backups signed with an older
// key stay verifiable after a rotation. PEM armour is accepted for both.
import { BackupError } from "../errors";

export const SIGNATURE_ALG = "Ed25519";
/** Signed bytes = this prefix + the canonical manifest: a signature can never be replayed as another kind of message. */
const DOMAIN = "d1-backup manifest signature v1\n";
// An Ed25519 SPKI is this fixed DER header followed by the 32-byte public key (RFC 8410).
const SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

export interface ManifestSignature {
  alg: typeof SIGNATURE_ALG;
  /** First 16 hex digits of sha256(SPKI): names the key, so rotation needs no guessing. */
  keyId: string;
  /** base64 Ed25519 signature of DOMAIN + canonicalJson(manifest without `signature`). */
  sig: string;
}

export interface SigningKey {
  key: CryptoKey;
  keyId: string;
}

export interface VerifyKey {
  key: CryptoKey;
  keyId: string;
}

/** What a manifest's signature says, checked against the listed public keys. */
export type SignatureState =
  | { state: "valid"; keyId: string }
  | { state: "unsigned" }
  /** Signed by a key that is not in BACKUP_VERIFY_KEY (another key, or a rotated one not listed). */
  | { state: "unknown-key"; keyId: string }
  /** The key is listed but the signature does not match: the manifest was changed after signing. */
  | { state: "invalid"; keyId: string }
  /** Signed, but no public key was given to check it with. */
  | { state: "no-keys"; keyId: string };

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

type Bytes = Uint8Array<ArrayBuffer>;

function fromBase64(text: string): Bytes | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

async function sha256Hex(bytes: Bytes): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const keyIdOf = async (spki: Bytes) => (await sha256Hex(spki)).slice(0, 16);

/**
 * JSON with object keys sorted at every level and no whitespace. The manifest holds only strings,
 * integers, booleans and null (and JSON.stringify's number form is fixed by ECMAScript), so this
 * is one exact byte string in workerd and Node alike.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

function signedBytes(manifest: object): Bytes {
  const { signature: _omit, ...rest } = manifest as Record<string, unknown>;
  return new TextEncoder().encode(DOMAIN + canonicalJson(rest));
}

/** A key's DER bytes from base64 or PEM text; null if it is neither. */
function der(text: string): Bytes | null {
  return fromBase64(text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, ""));
}

/**
 * BACKUP_SIGNING_KEY, parsed once at an entry point. Unset (or empty) is not a problem: backups are
 * then made unsigned and say so. A value that is set but unusable is, and names the setting, never
 * the value.
 */
export async function parseSigningKey(text: string | undefined | null): Promise<{ key: SigningKey | null; problem: string | null }> {
  const value = (text ?? "").trim().replace(/^"(.*)"$/s, "$1").replace(/\\n/g, "\n");
  if (!value) return { key: null, problem: null };
  const bytes = der(value);
  const bad = (why: string) => ({ key: null, problem: `BACKUP_SIGNING_KEY is invalid: ${why} (expected base64 PKCS#8 of an Ed25519 key: npm run keys)` });
  if (!bytes) return bad("not base64");
  let key: CryptoKey;
  try {
    // Extractable only to read the public half (JWK x) for the key id; the key never leaves here.
    key = await crypto.subtle.importKey("pkcs8", bytes, { name: SIGNATURE_ALG }, true, ["sign"]);
  } catch {
    return bad("not an Ed25519 private key");
  }
  const jwk = (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey;
  const x = jwk.x ? fromBase64(jwk.x.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (jwk.x.length % 4)) % 4)) : null;
  if (!x || x.length !== 32) return bad("no public key in it");
  return { key: { key, keyId: await keyIdOf(new Uint8Array([...SPKI_PREFIX, ...x])) }, problem: null };
}

/**
 * BACKUP_VERIFY_KEY: one or more public keys (base64 SPKI or PEM, separated by commas or
 * whitespace). Anything unusable is INVALID_INPUT naming which entry: a restore must not quietly
 * run with fewer keys than the operator listed.
 */
export async function parseVerifyKeys(text: string): Promise<VerifyKey[]> {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  const rest = text.replace(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g, " ").replace(/\\n/g, " ");
  const entries = [...pems, ...rest.split(/[\s,"]+/).filter(Boolean)];
  const keys: VerifyKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const bytes = der(entry);
    let key: CryptoKey | null = null;
    if (bytes) key = await crypto.subtle.importKey("spki", bytes, { name: SIGNATURE_ALG }, false, ["verify"]).catch(() => null);
    if (!bytes || !key) {
      throw new BackupError("INVALID_INPUT", `BACKUP_VERIFY_KEY entry ${i + 1} is not an Ed25519 public key (base64 SPKI, as npm run keys prints)`);
    }
    keys.push({ key, keyId: await keyIdOf(bytes) });
  }
  return keys;
}

/** The signature of a manifest (everything but its `signature` field). */
export async function signManifest(manifest: object, signing: SigningKey): Promise<ManifestSignature> {
  const sig = new Uint8Array(await crypto.subtle.sign({ name: SIGNATURE_ALG }, signing.key, signedBytes(manifest)));
  return { alg: SIGNATURE_ALG, keyId: signing.keyId, sig: toBase64(sig) };
}

/** Checks the signature of a manifest as stored (the raw JSON object, not a parsed copy). */
export async function verifyManifestSignature(raw: unknown, keys: VerifyKey[]): Promise<SignatureState> {
  const signature = (raw as { signature?: unknown } | null)?.signature;
  if (signature === undefined || signature === null) return { state: "unsigned" };
  const s = signature as Partial<ManifestSignature>;
  const keyId = typeof s.keyId === "string" ? s.keyId : "?";
  if (s.alg !== SIGNATURE_ALG || typeof s.sig !== "string") return { state: "invalid", keyId };
  if (keys.length === 0) return { state: "no-keys", keyId };
  const sig = fromBase64(s.sig);
  // Every listed key is tried (not only the one named by keyId): keyId is an unsigned hint.
  for (const k of keys) {
    if (sig && (await crypto.subtle.verify({ name: SIGNATURE_ALG }, k.key, sig, signedBytes(raw as object)))) {
      return { state: "valid", keyId: k.keyId };
    }
  }
  return keys.some((k) => k.keyId === keyId) ? { state: "invalid", keyId } : { state: "unknown-key", keyId };
}

/** A new key pair as the two text values to configure (npm run keys, tests). */
export async function generateKeyPair(): Promise<{ signingKey: string; verifyKey: string; keyId: string }> {
  const pair = (await crypto.subtle.generateKey({ name: SIGNATURE_ALG }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pkcs8 = new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer);
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  return { signingKey: toBase64(pkcs8), verifyKey: toBase64(spki), keyId: await keyIdOf(spki) };
}
