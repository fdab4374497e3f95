// Clerk-shaped session tokens for tests: real RS256 JWTs signed by a key pair made here. The app
// under test gets the public half as CLERK_JWT_KEY, exactly as a deployment gets the Clerk
// instance's key, so every token is verified for real; nothing is bypassed.
import { exportSPKI, generateKeyPair, SignJWT, type KeyLike } from "jose";

/** pk_test_ + base64("<frontend API host>$") under .invalid: Clerk parses it, nothing resolves it. */
export const TEST_PUBLISHABLE_KEY = `pk_test_${Buffer.from("clerk.d1-backup.invalid$").toString("base64")}`;
export const TEST_SECRET_KEY = "sk_test_tests_only_not_a_real_key";

export interface TokenOptions {
  /** Sign with another key (a forgery); the signer's own key by default. */
  key?: KeyLike;
  expSeconds?: number;
  iatOffset?: number;
  nbfOffset?: number;
}

export interface TestSigner {
  /** The PEM to configure as CLERK_JWT_KEY. */
  publicPem: string;
  /** A key the app does not trust. */
  strangerKey: KeyLike;
  /** An admin session token by default (metadata.role = admin); claims override it. */
  token(claims?: Record<string, unknown>, opts?: TokenOptions): Promise<string>;
}

export async function createTestSigner(opts: { azp?: string } = {}): Promise<TestSigner> {
  const pair = await generateKeyPair("RS256", { modulusLength: 2048 });
  const strangerKey = (await generateKeyPair("RS256", { modulusLength: 2048 })).privateKey;
  return {
    publicPem: await exportSPKI(pair.publicKey),
    strangerKey,
    token(claims = {}, t = {}) {
      const now = Math.floor(Date.now() / 1000);
      const base: Record<string, unknown> = { sid: "sess_test_1", metadata: { role: "admin" } };
      if (opts.azp) base.azp = opts.azp;
      return new SignJWT({ ...base, ...claims })
        .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: "ins_test" })
        .setIssuer("https://clerk.d1-backup.invalid")
        .setSubject((claims.sub as string | undefined) ?? "user_admin_1")
        .setIssuedAt(now + (t.iatOffset ?? 0))
        .setNotBefore(now + (t.nbfOffset ?? -10))
        .setExpirationTime(now + (t.expSeconds ?? 600))
        .sign(t.key ?? pair.privateKey);
    },
  };
}
