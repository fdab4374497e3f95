// `npm run keys [-- --dev-vars]`: a new Ed25519 key pair for signed manifests. Prints the secret
// BACKUP_SIGNING_KEY (the Pages project and the cron Worker sign with it) and the public
// BACKUP_VERIFY_KEY (restores verify with it), and how to set them. --dev-vars writes both into
// .dev.vars for local use instead (keeping values already there) and prints only the public half.
// --age FILE makes an age identity for encrypted backups instead: the private key goes into FILE
// (age-keygen's format, 0600), and the public key to print is what BACKUP_AGE_RECIPIENTS holds.
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { generateAgeKey, generateKeyPair } from "../lib/backup";
import { PROJECT_ROOT } from "../lib/local";

const HELP = `usage: npm run keys                 print a new key pair and how to configure it
       npm run keys -- --dev-vars     add a new pair to .dev.vars (local demo), unless one is there
       npm run keys -- --age FILE     a new age identity for encrypted backups, written to FILE
                                      (never overwritten); prints its public key (BACKUP_AGE_RECIPIENTS)`;

/** `--age FILE`: the same file `age-keygen -o FILE` writes, so stock age reads it too. */
async function ageKey(file: string): Promise<number> {
  if (fs.existsSync(file)) {
    console.error(`keys: ${file} already exists; left as it is (choose another file)`);
    return 2;
  }
  const { identity, recipient } = await generateAgeKey();
  const text = `# created: ${new Date().toISOString().replace(/\.\d{3}Z$/, "Z")}\n# public key: ${recipient}\n${identity}\n`;
  try {
    fs.writeFileSync(file, text, { mode: 0o600, flag: "wx" });
  } catch (e) {
    console.error(`keys: writing ${file} failed: ${(e as Error).message}`);
    return 2;
  }
  console.log(`Public key (BACKUP_AGE_RECIPIENTS; not secret):
${recipient}

The identity (PRIVATE key) is in ${file}. Keep it off Cloudflare: in a password manager or a
safe, with a second copy, and on the machine that restores (--identity ${file} or
AGE_IDENTITY_FILE). Lose every copy and the encrypted backups are lost with it.
(The same with stock tools: age-keygen -o ${file}; age-keygen -y ${file} prints the public key.)

Encrypt every backup to it, on the Pages project and the cron Worker alike (several keys:
comma separated; each command prompts for the value):
  npx wrangler pages secret put BACKUP_AGE_RECIPIENTS --project-name tech-support-portal
  npx wrangler secret put BACKUP_AGE_RECIPIENTS --config functions/wrangler.toml`);
  return 0;
}

function hasVar(text: string, name: string): boolean {
  return new RegExp(`^\\s*${name}=\\S`, "m").test(text);
}

async function main(): Promise<number> {
  let values: { "dev-vars"?: boolean; age?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { "dev-vars": { type: "boolean" }, age: { type: "string" }, help: { type: "boolean" } } }));
  } catch (e) {
    console.error(`keys: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.age !== undefined) return ageKey(values.age);
  const pair = await generateKeyPair();
  if (values["dev-vars"]) {
    const file = path.join(PROJECT_ROOT, ".dev.vars");
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    if (hasVar(text, "BACKUP_SIGNING_KEY")) {
      console.error("keys: .dev.vars already has BACKUP_SIGNING_KEY; left as it is");
      return 0;
    }
    const lines = [`BACKUP_SIGNING_KEY=${pair.signingKey}`];
    // The verify key may list older keys already (a rotation): add the new one in front.
    const old = /^\s*BACKUP_VERIFY_KEY=(.*)$/m.exec(text)?.[1]?.replace(/^"(.*)"$/, "$1").trim();
    const next = old ? `${pair.verifyKey},${old}` : pair.verifyKey;
    const kept = text.replace(/^\s*BACKUP_VERIFY_KEY=.*\n?/m, "");
    const sep = kept && !kept.endsWith("\n") ? "\n" : "";
    fs.writeFileSync(file, `${kept}${sep}${lines.join("\n")}\nBACKUP_VERIFY_KEY=${next}\n`, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    console.error(`keys: added BACKUP_SIGNING_KEY and BACKUP_VERIFY_KEY (key id ${pair.keyId}) to .dev.vars`);
    return 0;
  }
  console.log(`Key id: ${pair.keyId}

BACKUP_SIGNING_KEY (SECRET: whoever has it can sign backups; store it only as a secret):
${pair.signingKey}

BACKUP_VERIFY_KEY (public: restores check signatures with it):
${pair.verifyKey}

Set the secret on both signers (each command prompts for the value: paste it there, not on the
command line, so it stays out of your shell history):
  npx wrangler pages secret put BACKUP_SIGNING_KEY --project-name tech-support-portal
  npx wrangler secret put BACKUP_SIGNING_KEY --config functions/wrangler.toml

Give the public key to every machine that restores: BACKUP_VERIFY_KEY in the environment or in
.dev.vars, or a file with --verify-key FILE. Rotating: list the new key first and keep the old
ones (comma separated) as long as backups signed with them are kept (BACKUP_SETUP.md).`);
  return 0;
}

main().then((code) => process.exit(code));
