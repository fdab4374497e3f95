// `npm run keys [-- --dev-vars]`: a new Ed25519 key pair for signed manifests. Prints the secret
// BACKUP_SIGNING_KEY (the Pages project and the cron Worker sign with it) and the public
// BACKUP_VERIFY_KEY (restores verify with it), and how to set them. --dev-vars writes both into
// .dev.vars for local use instead (keeping values already there) and prints only the public half.
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { generateKeyPair } from "../lib/backup";
import { PROJECT_ROOT } from "../lib/local";

const HELP = `usage: npm run keys                 print a new key pair and how to configure it
       npm run keys -- --dev-vars     add a new pair to .dev.vars (local demo), unless one is there`;

function hasVar(text: string, name: string): boolean {
  return new RegExp(`^\\s*${name}=\\S`, "m").test(text);
}

async function main(): Promise<number> {
  let values: { "dev-vars"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { "dev-vars": { type: "boolean" }, help: { type: "boolean" } } }));
  } catch (e) {
    console.error(`keys: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
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
