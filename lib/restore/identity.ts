// The age identity (private key) that decrypts encrypted backups. It lives only on the operator's
// machine (never in Cloudflare): `--identity FILE`, else AGE_IDENTITY_FILE from the environment or
// .dev.vars names the file, in the format age-keygen writes.
import fs from "node:fs";
import { BackupError, errorMessage, parseAgeIdentities } from "../backup";
import { localSetting } from "../local";

export interface AgeIdentities {
  identities: string[];
  /** Where they came from, for messages: "--identity key.txt" or "AGE_IDENTITY_FILE key.txt". */
  source: string;
}

/** Reads and checks the identity file; null when none is configured. A bad file is INVALID_INPUT (exit 2). */
export function loadAgeIdentities(flag: string | undefined): AgeIdentities | null {
  const file = flag ?? localSetting("AGE_IDENTITY_FILE");
  if (!file) return null;
  const source = `${flag ? "--identity" : "AGE_IDENTITY_FILE"} ${file}`;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new BackupError("INVALID_INPUT", `${source}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : errorMessage(e)}`);
  }
  return { identities: parseAgeIdentities(text, source), source };
}
