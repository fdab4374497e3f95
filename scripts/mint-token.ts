// Local development tool: mints Clerk-shaped session tokens so an admin can call the API with curl
// while Clerk's servers are out of reach (offline demo, CI).
//
// This is not an auth bypass. The server still verifies every token's RS256 signature against the
// public key configured in CLERK_JWT_KEY (see middleware.ts); this script only holds a local key
// pair under .wrangler/dev-clerk/ (gitignored) whose public half the *local* setup configures as
// CLERK_JWT_KEY (scripts/dev.sh writes it to .dev.vars). A deployment configured with the real
// Clerk instance's key rejects these tokens like any other forgery.
//
//   npx tsx scripts/mint-token.ts [--role admin|member] [--user user_demo_admin] [--ttl 3600] [--azp http://localhost:3000]
//   npx tsx scripts/mint-token.ts --public-key            # the PEM to use as CLERK_JWT_KEY
//   npx tsx scripts/mint-token.ts --public-key --one-line # same, with \n escapes (for .dev.vars)
import { generateKeyPairSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { importPKCS8, SignJWT } from "jose";

const ROOT = path.resolve(__dirname, "..");
export const DEV_CLERK_DIR = path.join(ROOT, ".wrangler", "dev-clerk");
/**
 * Offline publishable key: pk_test_ + base64("<frontend API host>$"), the format Clerk's SDK parses.
 * The host is under .invalid (RFC 2606), so nothing can ever resolve or answer for it; pk_test_
 * makes Clerk treat it as a development instance.
 */
export const DEV_FRONTEND_API = "clerk.d1-backup.invalid";
export const DEV_PUBLISHABLE_KEY = `pk_test_${Buffer.from(`${DEV_FRONTEND_API}$`).toString("base64")}`;

export interface DevKeys {
  privateKeyPem: string;
  publicKeyPem: string;
}

/** The local key pair, created on first use (RSA 2048: Clerk's PEM loader reads only that size). */
export function ensureDevKeys(dir = DEV_CLERK_DIR): DevKeys {
  const privPath = path.join(dir, "private.pem");
  const pubPath = path.join(dir, "public.pem");
  if (!fs.existsSync(privPath) || !fs.existsSync(pubPath)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    fs.writeFileSync(privPath, privateKey, { mode: 0o600 });
    fs.writeFileSync(pubPath, publicKey, { mode: 0o644 });
  }
  return { privateKeyPem: fs.readFileSync(privPath, "utf8"), publicKeyPem: fs.readFileSync(pubPath, "utf8") };
}

export async function mintSessionToken(
  keys: DevKeys,
  opts: { role: string; userId: string; ttlSeconds: number; azp: string },
): Promise<string> {
  const key = await importPKCS8(keys.privateKeyPem, "RS256");
  const now = Math.floor(Date.now() / 1000);
  // The claims of a Clerk session token (v2), plus the customised `metadata` claim the admin check reads.
  return new SignJWT({
    azp: opts.azp,
    sid: `sess_dev_${randomBytes(8).toString("hex")}`,
    metadata: { role: opts.role },
    v: 2,
  })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: "ins_dev_local" })
    .setIssuer(`https://${DEV_FRONTEND_API}`)
    .setSubject(opts.userId)
    .setIssuedAt(now)
    // Clerk backdates nbf a little to tolerate clock skew between its servers and yours.
    .setNotBefore(now - 10)
    .setExpirationTime(now + opts.ttlSeconds)
    .sign(key);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: "string", default: "admin" },
      user: { type: "string" },
      ttl: { type: "string", default: "3600" },
      azp: { type: "string", default: `http://localhost:${process.env.PORT ?? "3000"}` },
      "public-key": { type: "boolean", default: false },
      "one-line": { type: "boolean", default: false },
      "publishable-key": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: npx tsx scripts/mint-token.ts [--role admin|member] [--user ID] [--ttl SECONDS] [--azp ORIGIN]\n" +
        "       npx tsx scripts/mint-token.ts --public-key [--one-line] | --publishable-key",
    );
    return;
  }
  if (values["publishable-key"]) {
    console.log(DEV_PUBLISHABLE_KEY);
    return;
  }
  const keys = ensureDevKeys();
  if (values["public-key"]) {
    const pem = keys.publicKeyPem.trim();
    console.log(values["one-line"] ? pem.replace(/\n/g, "\\n") : pem);
    return;
  }
  if (values.role !== "admin" && values.role !== "member") throw new Error(`--role must be admin or member (got ${values.role})`);
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1) throw new Error(`--ttl takes a whole number of seconds (got ${values.ttl})`);
  const token = await mintSessionToken(keys, {
    role: values.role,
    userId: values.user ?? `user_demo_${values.role}`,
    ttlSeconds: ttl,
    azp: values.azp,
  });
  console.log(token);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`mint-token: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
