// A signing key pair for tests, made once per test file: backups made in a test's setup are signed
// with it (as production's are with BACKUP_SIGNING_KEY), and restores verify with its public half.
import { generateKeyPair, parseSigningKey, parseVerifyKeys, type SigningKey, type VerifyKey } from "../../lib/backup";

export interface TestKeys {
  signingKey: SigningKey;
  verifyKeys: VerifyKey[];
  /** The text values, as BACKUP_SIGNING_KEY / BACKUP_VERIFY_KEY would hold them. */
  text: { signingKey: string; verifyKey: string; keyId: string };
}

export async function makeTestKeys(): Promise<TestKeys> {
  const text = await generateKeyPair();
  const { key } = await parseSigningKey(text.signingKey);
  return { signingKey: key!, verifyKeys: await parseVerifyKeys(text.verifyKey), text };
}

let shared: Promise<TestKeys> | undefined;
/** The one pair of this test file. */
export function testKeys(): Promise<TestKeys> {
  shared ??= makeTestKeys();
  return shared;
}
