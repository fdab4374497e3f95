// Client-side encryption of backup objects with age (age-encryption.org/v1, FiloSottile's
// typage): the same format the `age` CLI reads, so a backup decrypts with stock tools too. The
// Worker only ever holds public keys (BACKUP_AGE_RECIPIENTS); the identity (private key) is read
// by the restore CLI on the operator's machine. Both directions are streams (64 KiB age chunks),
// so memory does not grow with the backup, in workerd and in Node alike.
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { BackupError } from "../errors";

/** What the manifest records, and what the entry point hands down parsed. */
export interface AgeEncryption {
  scheme: "age";
  /** X25519 recipients (`age1…`), in the order configured. */
  recipients: string[];
}

/** The first bytes of every age file (its header's version line). */
export const AGE_MAGIC = "age-encryption.org/v1";

// Only native X25519 recipients: Debian's age (1.1) and other stock tools read them; post-quantum
// and plugin recipients (age1pq1…, age1tag1…, age1yubikey1…) they would not.
const X25519_RECIPIENT_RE = /^age1[02-9ac-hj-np-z]{58}$/;

/**
 * BACKUP_AGE_RECIPIENTS, parsed once at an entry point: one or more `age1…` public keys separated
 * by commas, spaces or newlines (`#` comments allowed, as in an age recipients file). Unset or
 * empty: null, backups are not encrypted. Set but unusable: `problem` names the entry, never
 * the whole value.
 */
export function parseAgeRecipients(text: string | undefined | null): { encryption: AgeEncryption | null; problem: string | null } {
  const entries = (text ?? "")
    .replace(/\\n/g, "\n")
    .split("\n")
    .map((line) => line.replace(/#.*$/, ""))
    .join(" ")
    .split(/[\s,"']+/)
    .filter(Boolean);
  if (entries.length === 0) return { encryption: null, problem: null };
  const recipients: string[] = [];
  for (const [i, entry] of entries.entries()) {
    const bad = (why: string) => ({ encryption: null, problem: `BACKUP_AGE_RECIPIENTS entry ${i + 1} ${why} (an X25519 public key, age1…: age-keygen -y key.txt, or npm run keys -- --age)` });
    if (entry.startsWith("AGE-SECRET-KEY-")) return bad("is a PRIVATE key: never give the identity to Cloudflare, only its public key");
    if (!X25519_RECIPIENT_RE.test(entry)) return bad("is not an age X25519 recipient");
    try {
      new Encrypter().addRecipient(entry); // bech32 checksum and key length
    } catch {
      return bad("has a bad checksum");
    }
    if (!recipients.includes(entry)) recipients.push(entry);
  }
  return { encryption: { scheme: "age", recipients }, problem: null };
}

/** The age encryption of a byte stream, for every recipient; streamed. */
export async function encryptStream(input: ReadableStream<Uint8Array>, encryption: AgeEncryption): Promise<ReadableStream<Uint8Array>> {
  const encrypter = new Encrypter();
  for (const r of encryption.recipients) encrypter.addRecipient(r);
  return encrypter.encrypt(input);
}

/**
 * The identities of an age identity file (`age-keygen` output: `AGE-SECRET-KEY-1…` lines, `#`
 * comments). INVALID_INPUT naming the file when there is none or a line is something else.
 */
export function parseAgeIdentities(text: string, source: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  if (lines.length === 0) throw new BackupError("INVALID_INPUT", `${source} holds no age identity (expected AGE-SECRET-KEY-1… lines, as age-keygen writes)`);
  for (const [i, line] of lines.entries()) {
    try {
      new Decrypter().addIdentity(line);
    } catch {
      throw new BackupError("INVALID_INPUT", `${source}: line ${i + 1} of its keys is not an age identity (AGE-SECRET-KEY-1…; passphrase-protected or plugin identities are not supported)`);
    }
  }
  return lines;
}

/**
 * The plaintext stream of an age file. The header is read and a key is unwrapped before this
 * resolves, so a wrong identity is refused here, before any plaintext exists; a damaged body
 * fails while reading (each 64 KiB chunk is authenticated).
 */
export async function decryptStream(input: ReadableStream<Uint8Array>, identities: string[], what: string): Promise<ReadableStream<Uint8Array>> {
  const decrypter = new Decrypter();
  for (const id of identities) decrypter.addIdentity(id);
  try {
    return await decrypter.decrypt(input);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/no identity matched/i.test(message)) {
      throw new BackupError("INTEGRITY_ERROR", `wrong age identity: none of the given identities can decrypt ${what} (it is encrypted to other keys)`, {
        details: { check: "decrypt" },
      });
    }
    throw new BackupError("INTEGRITY_ERROR", `${what} is not a readable age file (${message})`, { details: { check: "decrypt" } });
  }
}

/** An age recipient (public key) and its identity (private key), for `npm run keys -- --age` and tests. */
export async function generateAgeKey(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}
