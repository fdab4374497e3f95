// `npm run preflight [-- --root DIR]`: what can be checked from a checkout before a deploy, in one
// list. Exit 0 when nothing is missing, 1 otherwise (2 for a bad flag). Checks: placeholder
// database ids in wrangler.toml / functions/wrangler.toml, both configs' bindings identical, the
// key formats of the settings it can see (the shell's env over .dev.vars), and, when wrangler is
// logged in, the secrets set on the Pages project and on the cron Worker.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PROJECT_ROOT, WRANGLER_BIN, wranglerEnv } from "../lib/local";
import { OFFSITE_SETTINGS, parseOffsiteConfig } from "../lib/offsite";
import { DRILL_DATABASE_NAME, DRILL_DB_BINDING } from "../lib/names";
import { parseCli } from "./cli-args";

const USAGE = `
npm run preflight -- [--root DIR] [--offline]

Checks a checkout before \`npm run build:pages\` and the deploys (BACKUP_SETUP.md):
  --root DIR   the checkout to check (default: this one)
  --offline    do not ask wrangler for the secrets set in the account
  -h, --help   this text
`;

const PAGES_PROJECT = "tech-support-portal";
// lib/env.ts MIN_CRON_SECRET_LENGTH (not imported: lib/env.ts needs the Pages runtime).
const MIN_CRON_SECRET_LENGTH = 32;
// What the app refuses to run without when deployed (lib/env.ts); CRON_SECRET only if the
// HTTP cron route is used, so it is reported as a note, not a failure.
const PAGES_SECRETS = ["CLERK_PUBLISHABLE_KEY", "CLERK_SECRET_KEY", "CLERK_JWT_KEY", "CLERK_AUTHORIZED_PARTIES"];
// All zeros but the last digits: the ids the repository ships (one per database binding).
const PLACEHOLDER_ID = /^0{8}-0{4}-0{4}-0{4}-0{9}\d{3}$/;

interface Binding {
  kind: string;
  fields: Record<string, string>;
}

/** The [[d1_databases]] and [[r2_buckets]] tables of a wrangler.toml: enough TOML for these files. */
function bindingsOf(toml: string): Binding[] {
  const out: Binding[] = [];
  let current: Binding | null = null;
  for (const raw of toml.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const table = /^\[\[?([^\]]+)\]\]?$/.exec(line);
    if (table) {
      current = table[1] === "d1_databases" || table[1] === "r2_buckets" ? { kind: table[1], fields: {} } : null;
      if (current) out.push(current);
      continue;
    }
    const kv = /^([A-Za-z_]+)\s*=\s*"([^"]*)"$/.exec(line);
    if (current && kv && kv[1] !== "migrations_dir") current.fields[kv[1]] = kv[2];
  }
  return out;
}

function topLevel(toml: string, key: string): string | undefined {
  const head = toml.split(/^\[/m)[0];
  return new RegExp(`^${key}\\s*=\\s*(.+)$`, "m").exec(head)?.[1].replace(/#.*$/, "").trim();
}

/** dotenv as .dev.vars uses it: KEY=value, KEY="with \n escapes". */
function readDevVars(file: string): Record<string, string> {
  if (!fs.existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim();
    out[m[1]] = v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\n/g, "\n") : v;
  }
  return out;
}

function loggedIn(): boolean {
  if (process.env.CLOUDFLARE_API_TOKEN) return true;
  const home = os.homedir();
  return [".config/.wrangler/config/default.toml", ".wrangler/config/default.toml"].some((p) => fs.existsSync(path.join(home, p)));
}

/** Secret names from `wrangler … secret list` (JSON on stdout), or why they could not be read. */
function secretNames(args: string[], cwd: string): { names: string[] } | { error: string } {
  const r = spawnSync(WRANGLER_BIN, args, { cwd, env: wranglerEnv(), encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) return { error: (r.stderr || r.stdout || String(r.error ?? "")).trim().split("\n").slice(-1)[0] ?? "failed" };
  const m = /\[[\s\S]*\]/.exec(r.stdout);
  try {
    return { names: (JSON.parse(m ? m[0] : "[]") as { name: string }[]).map((s) => s.name) };
  } catch {
    // Older wranglers print "- NAME: Value Encrypted" lines.
    return { names: [...r.stdout.matchAll(/^\s*-\s*([A-Z_][A-Z0-9_]*)/gm)].map((x) => x[1]) };
  }
}

function main(): number {
  const values = parseCli("preflight", USAGE, { root: { type: "string" }, offline: { type: "boolean", default: false } });
  const root = path.resolve(values.root ?? PROJECT_ROOT);
  const missing: string[] = [];
  const notes: string[] = [];

  // 1. Both wrangler configs: real ids, the same bindings.
  const files = { pages: path.join(root, "wrangler.toml"), cron: path.join(root, "functions", "wrangler.toml") };
  const tomls: Record<string, string> = {};
  for (const [k, f] of Object.entries(files)) {
    if (!fs.existsSync(f)) missing.push(`${path.relative(root, f)} does not exist`);
    else tomls[k] = fs.readFileSync(f, "utf8");
  }
  if (tomls.pages && tomls.cron) {
    const [pages, cron] = [bindingsOf(tomls.pages), bindingsOf(tomls.cron)];
    for (const [k, list] of [["wrangler.toml", pages], ["functions/wrangler.toml", cron]] as const) {
      for (const b of list.filter((x) => x.kind === "d1_databases")) {
        const id = b.fields.database_id ?? "";
        if (!id || PLACEHOLDER_ID.test(id)) {
          missing.push(`${k}: database_id of ${b.fields.binding ?? "?"} is the placeholder; put the id \`npx wrangler d1 create ${b.fields.database_name ?? "…"}\` (or \`npx wrangler d1 list\`) shows`);
        }
      }
    }
    // The restore drill's scratch database is the cron Worker's alone; it must not be the portal's.
    const drill = cron.find((b) => b.fields.binding === DRILL_DB_BINDING);
    const portal = cron.find((b) => b.fields.binding === "DB");
    if (drill && portal && drill.fields.database_id === portal.fields.database_id) {
      missing.push(`functions/wrangler.toml: ${DRILL_DB_BINDING} has DB's database_id; the drill empties it, so it refuses: create its own (npx wrangler d1 create ${DRILL_DATABASE_NAME})`);
    }
    const shared = (l: Binding[]) => l.filter((b) => b.fields.binding !== DRILL_DB_BINDING);
    const show = (l: Binding[]) => JSON.stringify(shared(l).map((b) => ({ kind: b.kind, ...b.fields })).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))));
    if (show(pages) !== show(cron)) missing.push(`wrangler.toml and functions/wrangler.toml bind differently: ${show(pages)} vs ${show(cron)}`);
    for (const key of ["compatibility_date", "compatibility_flags"]) {
      if (topLevel(tomls.pages, key) !== topLevel(tomls.cron, key)) missing.push(`${key} differs between wrangler.toml and functions/wrangler.toml`);
    }
  }

  // 2. Key formats of the settings visible here: the shell's env first, then .dev.vars.
  const devVars = readDevVars(path.join(root, ".dev.vars"));
  const setting = (name: string) => process.env[name] ?? devVars[name];
  const jwtKey = setting("CLERK_JWT_KEY")?.replace(/\\n/g, "\n");
  if (jwtKey === undefined) notes.push("CLERK_JWT_KEY not in the env or .dev.vars: format not checked");
  else if (!/^-----BEGIN PUBLIC KEY-----\s*[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----\s*$/.test(jwtKey)) {
    missing.push("CLERK_JWT_KEY is not a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----; Clerk → API keys → Show JWT public key)");
  }
  const cron = setting("CRON_SECRET");
  if (cron === undefined || cron === "") notes.push("CRON_SECRET not set: /api/cron/backup refuses every call (fine when only the cron Worker runs backups)");
  else if (cron.length < MIN_CRON_SECRET_LENGTH) missing.push(`CRON_SECRET is shorter than ${MIN_CRON_SECRET_LENGTH} characters (openssl rand -hex 32)`);
  const parties = setting("CLERK_AUTHORIZED_PARTIES");
  if (parties && !parties.split(",").every((o) => /^https?:\/\/[^/\s]+$/.test(o.trim()))) {
    missing.push("CLERK_AUTHORIZED_PARTIES must be comma-separated origins like https://portal.example.com");
  }

  // The off-site copy: all of OFFSITE_S3_* or none (a partial set makes every run's copy fail).
  const offsite = parseOffsiteConfig(setting);
  if (offsite.problem) missing.push(offsite.problem);
  else if (!offsite.config) notes.push("OFFSITE_S3_* not set here: no off-site copy is configured locally (BACKUP_SETUP.md, off-site copy)");
  /** The OFFSITE_S3_* secrets of one deployment: all or none. */
  const offsiteSecrets = (where: string, names: string[]) => {
    const set = OFFSITE_SETTINGS.filter((n) => names.includes(n));
    if (set.length && set.length < OFFSITE_SETTINGS.length) {
      missing.push(`${where} has only some off-site secrets: missing ${OFFSITE_SETTINGS.filter((n) => !names.includes(n)).join(", ")} (set all of them, or none)`);
    } else if (!set.length) notes.push(`${where} has no OFFSITE_S3_* secrets: its backups get no off-site copy`);
  };

  // 3. Secrets set in the account, when wrangler can ask.
  if (values.offline || !loggedIn()) {
    notes.push(`secrets in the account not checked (${values.offline ? "--offline" : "wrangler is not logged in: npx wrangler login, or CLOUDFLARE_API_TOKEN"})`);
  } else {
    const pagesSecrets = secretNames(["pages", "secret", "list", "--project-name", PAGES_PROJECT], root);
    if ("error" in pagesSecrets) missing.push(`could not list the Pages project's secrets: ${pagesSecrets.error}`);
    else {
      for (const s of PAGES_SECRETS) if (!pagesSecrets.names.includes(s)) missing.push(`Pages project ${PAGES_PROJECT} has no ${s} (npx wrangler pages secret put ${s} --project-name ${PAGES_PROJECT})`);
      offsiteSecrets(`Pages project ${PAGES_PROJECT}`, pagesSecrets.names);
    }
    const workerSecrets = secretNames(["secret", "list", "--config", "functions/wrangler.toml"], root);
    if ("error" in workerSecrets) missing.push(`could not list the cron Worker's secrets: ${workerSecrets.error}`);
    else {
      if (!workerSecrets.names.includes("ALERT_WEBHOOK_URL")) notes.push("cron Worker has no ALERT_WEBHOOK_URL: failures are logged but nobody is told");
      offsiteSecrets("cron Worker", workerSecrets.names);
    }
  }

  for (const n of notes) console.log(`note: ${n}`);
  if (missing.length === 0) {
    console.log("preflight: nothing missing");
    return 0;
  }
  console.log(`preflight: ${missing.length} problem(s):`);
  for (const m of missing) console.log(`  - ${m}`);
  return 1;
}

process.exit(main());
