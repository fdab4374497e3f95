// `npm run restore -- <backup> [options]`: restore a backup, safely. Parses arguments and prints;
// all the work is in lib/restore (runRestore). See --help.
import fs from "node:fs";
import readline from "node:readline";
import { parseArgs } from "node:util";
import { parseVerifyKeys } from "../lib/backup";
import { BackupError, errorMessage, isBackupError } from "../lib/errors";
import { localSetting } from "../lib/local";
import { OFFSITE_SETTINGS, parseOffsiteConfig } from "../lib/offsite";
import { BUCKET_NAME as DEFAULT_BUCKET, DATABASE_NAME as DEFAULT_DATABASE } from "../lib/names";
import {
  type BackupSource,
  createReporter,
  formatResult,
  installSignalCleanup,
  loadAgeIdentities,
  type RestoreOptions,
  type RestoreResult,
  runRestore,
  type TargetSpec,
} from "../lib/restore";

const HELP = `usage: npm run restore -- <backup> [target] [options]
       npm run restore -- --file FILE [--manifest FILE] [target] [options]

Restores a backup made by d1-backup, safe by default: the backup is downloaded and verified
against its manifest (Ed25519 signature, object sha256, full gzip decompression, SQL sha256, end
marker, format version, backup name) before anything is touched; a target that is not empty is refused (with a
dry run of what would happen) unless --force; after the restore every table's row count is
compared with the manifest, and PRAGMA foreign_key_check, PRAGMA quick_check and the latest
d1_migrations entry are checked. Timings of every step and the total (RTO) are printed.

Backup (the source)
  <backup>                  database-YYYY-MM-DD-HH-MM-SS, database-….sql.gz or backups/database-….sql.gz
                            (newest local one: npm run -s backup -- --latest)
  --source-persist-to DIR   local state holding the R2 bucket (default: .wrangler/state)
  --remote                  fetch from the real bucket (wrangler r2 object get --remote; needs a
                            Cloudflare login or CLOUDFLARE_API_TOKEN); also makes a --database
                            target remote unless --local is given
  --bucket NAME             R2 bucket (default: ${DEFAULT_BUCKET})
  --from-offsite            fetch from the off-site copy (OFFSITE_S3_*: environment, else .dev.vars);
                            no Cloudflare access needed for the fetch
  --file FILE               a downloaded .sql.gz or .sql.gz.age (or plain .sql) instead of a bucket
  --manifest FILE           its manifest (default: <name>.manifest.json beside the file)
  --no-manifest             restore a file without its manifest: only the gzip and the end marker
                            are checked, row counts are not compared (last resort; needs
                            --allow-unsigned: without a manifest there is no signature)

Signature (every manifest is signed with BACKUP_SIGNING_KEY; see BACKUP_SETUP.md)
  --verify-key FILE         the public key(s) to verify with (default: BACKUP_VERIFY_KEY from the
                            environment, else .dev.vars); several, comma separated, after a rotation
  --allow-unsigned          restore even though the signature is missing, unknown or wrong
                            (printed loudly, and logged in activity_log as restore_unsigned_allowed)

Encryption (backups made with BACKUP_AGE_RECIPIENTS are age files: database-….sql.gz.age)
  --identity FILE           the age identity (private key, as age-keygen writes) that decrypts it
                            (default: the file AGE_IDENTITY_FILE names, environment else .dev.vars);
                            the object's sha256 is checked on the encrypted bytes, the SQL's after

Target (full restore: exactly one)
  --to-sqlite FILE          a plain SQLite file; must not exist unless --force (it is then built
                            beside the old one and renamed over it)
  --persist-to DIR          the local D1 ${DEFAULT_DATABASE} in its own state directory (a fresh DIR is
                            a fresh database; what wrangler --local --persist-to DIR uses)
  --database NAME           a D1 database by name: local (.wrangler/state, or --persist-to DIR)
                            unless --remote
  --local                   with --remote: fetch remotely but restore into the local --database

Safety
  --dry-run                 verify and print the plan (tables, rows, the exact command); change nothing
  --force                   overwrite a non-empty target, never losing it to a failed restore.
                            SQLite: the new file is built and checked beside it, then renamed over
                            it. D1: rehearsed and checked in a scratch local D1 first; then every
                            user table, view and trigger is dropped (children before parents) in
                            the same file as the dump, one atomic import; remote takes a Time
                            Travel bookmark first and refuses to go on without one
  --yes                     do not ask to type the database name before changing a remote database

Selective restore (put back rows; never deletes anything)
  --table NAME              a table to put back (repeatable; parents are ordered before children)
  --where "TABLE:SQL EXPR"  only that table's rows matching the expression (repeatable, one per
                            table; a table without one puts back all its rows); with exactly one
                            --table the prefix may be left out
  --cascade                 also every row that referenced the selected ones through a foreign key
                            in the backup, recursively (ON DELETE CASCADE children come back);
                            links cleared by ON DELETE SET NULL are set back to the backup's value
  --mode ignore|replace     ignore (default): a row whose key exists in the target keeps its live
                            values; replace: the backup's values win (updated in place, children
                            untouched)
  --out FILE                the put-back SQL file to write (default: put-back-<backup>.sql);
                            statements stay under D1's 100 KB limit. Triggers of the tables it
                            writes are dropped and re-created (exact SQL) around the writes inside
                            the same transaction, so they never fire
  --apply                   also apply it to the target (default target: local ${DEFAULT_DATABASE};
                            or --persist-to / --database / --to-sqlite) and compare every put-back
                            row with the backup cell by cell afterwards (exit 1 on a difference)
  --max-statement-bytes N   largest statement in the put-back file (default 16384, max 100000)

Output
  --actor NAME              who is restoring, for activity_log (default: os:<your OS user>)
  --keep-sql FILE           also keep the verified plain SQL (plaintext of every client: delete it)
  --json                    print the result as JSON (progress still goes to stderr)
  --quiet                   no progress on stderr
  --help

Temporary files (the download, the plain SQL, scratch databases) live in a private directory
(0700) d1-backup-restore-<pid>-<random> under $TMPDIR, removed on every exit, Ctrl-C included; a
later run removes what a killed run left and says so. Restores, put-backs, --force and
--allow-unsigned are written to activity_log when the target is the portal's D1 database.

Exit codes: 0 restored and checked (or dry run), 1 verification/restore/check failed (the target is
unchanged unless the message says otherwise), 2 invalid arguments, 3 refused: the target is not
empty (nothing changed), 130 interrupted (SIGINT), 143 terminated (SIGTERM).

Examples
  npm run restore -- database-2026-01-15-02-00-00 --persist-to restore-check
  npm run restore -- database-2026-01-15-02-00-00 --to-sqlite restored.db --dry-run
  npm run restore -- database-2026-01-15-02-00-00 --remote --database tech-support-db-restored
  npm run restore -- database-2026-01-15-02-00-00 --table ticket_comments --where "ticket_id = 42" --out put-back.sql
  npm run restore -- database-2026-01-15-02-00-00 --table tickets --where "tickets:id = 42" --cascade --apply
  npm run restore -- --file ./database-2026-01-15-02-00-00.sql.gz --to-sqlite restored.db
  npm run restore -- database-2026-01-15-02-00-00 --identity age-key.txt --to-sqlite restored.db
  npm run restore -- database-2026-01-15-02-00-00 --from-offsite --to-sqlite restored.db
  npm run backup -- --list          (the backups there are)`;

/** Every option, for parseArgs and for the npm hint below. */
const OPTIONS = {
  file: { type: "string" },
  manifest: { type: "string" },
  "no-manifest": { type: "boolean", default: false },
  remote: { type: "boolean", default: false },
  "from-offsite": { type: "boolean", default: false },
  local: { type: "boolean", default: false },
  "source-persist-to": { type: "string" },
  bucket: { type: "string" },
  "to-sqlite": { type: "string" },
  "persist-to": { type: "string" },
  database: { type: "string" },
  force: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
  yes: { type: "boolean", default: false },
  table: { type: "string", multiple: true },
  where: { type: "string", multiple: true },
  cascade: { type: "boolean", default: false },
  mode: { type: "string" },
  out: { type: "string" },
  apply: { type: "boolean", default: false },
  "max-statement-bytes": { type: "string" },
  "verify-key": { type: "string" },
  identity: { type: "string" },
  "allow-unsigned": { type: "boolean", default: false },
  actor: { type: "string" },
  "keep-sql": { type: "string" },
  json: { type: "boolean", default: false },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} as const;

const VALUE_NAMES: Record<string, string> = { file: "FILE", manifest: "FILE", "to-sqlite": "FILE", out: "FILE", "keep-sql": "FILE", "verify-key": "FILE", identity: "FILE", "persist-to": "DIR", "source-persist-to": "DIR", database: "NAME", bucket: "NAME", table: "NAME", actor: "NAME", where: '"TABLE:SQL EXPR"', mode: "ignore|replace", "max-statement-bytes": "N" };

/**
 * Options npm took for itself: `npm run restore NAME --force` (no `--`) hands --force to npm, which
 * only leaves it in npm_config_force. Any of ours there means the command line lost flags.
 */
export function eatenByNpm(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.npm_lifecycle_event !== "restore") return [];
  return Object.keys(OPTIONS).filter((o) => {
    const v = env[`npm_config_${o.replace(/-/g, "_")}`];
    return v !== undefined && v !== "";
  });
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

/** parseArgs' errors as one line of ours (its own advise quoting and `--`, which misleads here). */
function argumentError(e: unknown): BackupError {
  const err = e as { code?: string; message?: string };
  const opt = /'(--?[^' <]+)/.exec(err.message ?? "")?.[1] ?? "?";
  const name = opt.replace(/^-+/, "").replace(/=.*$/, "");
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const near = Object.keys(OPTIONS).filter((o) => distance(o, name) <= 2).sort((a, b) => distance(a, name) - distance(b, name))[0];
    return new BackupError("INVALID_INPUT", `unknown option ${opt}${near ? ` (did you mean --${near}?)` : ""}; see --help`);
  }
  if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/does not take an argument/.test(err.message ?? "")) return new BackupError("INVALID_INPUT", `${opt} takes no value; see --help`);
    return new BackupError("INVALID_INPUT", `${opt} needs a value: ${opt} ${VALUE_NAMES[name] ?? "VALUE"}`);
  }
  return new BackupError("INVALID_INPUT", `${errorMessage(e).split("\n")[0]}; see --help`);
}

function exitCodeFor(e: unknown): number {
  if (!isBackupError(e)) return 1;
  if (e.code === "INVALID_INPUT") return 2;
  if (e.code === "TARGET_NOT_EMPTY") return 3;
  return 1;
}

async function ask(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    rl.close();
  }
}

type ParsedArgs = { options: Omit<RestoreOptions, "verifyKeys">; verifyKeyFile: string | undefined; identityFile: string | undefined; json: boolean; quiet: boolean };

export function parseRestoreArgs(argv: string[], setting: (name: string) => string | undefined = localSetting): ParsedArgs | "help" {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (e) {
    throw argumentError(e);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  const invalid = (m: string) => new BackupError("INVALID_INPUT", m);
  if (positionals.length > 1) throw invalid(`one backup at a time (got ${positionals.join(", ")})`);
  const name = positionals[0];

  let source: BackupSource;
  if (values["from-offsite"]) {
    if (values.file) throw invalid("--from-offsite fetches from the off-site bucket; --file restores a file already downloaded: one or the other");
    if (!name) throw invalid("name the backup to restore from the off-site copy; see --help");
    if (values.manifest || values["no-manifest"]) throw invalid("--manifest and --no-manifest go with --file");
    if (values["source-persist-to"] || values.bucket) throw invalid("--source-persist-to and --bucket name an R2 source; --from-offsite reads OFFSITE_S3_*");
    const { config, problem } = parseOffsiteConfig(setting);
    if (problem) throw new BackupError("CONFIG_ERROR", problem);
    if (!config) throw invalid(`--from-offsite needs ${OFFSITE_SETTINGS.join(", ")} (environment or .dev.vars; BACKUP_SETUP.md)`);
    source = { kind: "offsite", name, config };
  } else if (values.file) {
    if (values.remote && !values.database) throw invalid("--file restores a file from disk; --remote is for the bucket (or a --database target)");
    source = { kind: "file", file: values.file, manifestFile: values.manifest, name, noManifest: values["no-manifest"] };
  } else {
    if (!name) throw invalid("name the backup to restore (or --file FILE); see --help");
    if (values.manifest || values["no-manifest"]) throw invalid("--manifest and --no-manifest go with --file");
    source = values.remote
      ? { kind: "remote", name, bucket: values.bucket }
      : { kind: "local", name, persistTo: values["source-persist-to"], bucket: values.bucket };
  }

  const targets = [values["to-sqlite"] && "--to-sqlite", (values["persist-to"] || values.database) && "--persist-to/--database"].filter(Boolean);
  if (targets.length > 1) throw invalid("one target at a time: --to-sqlite FILE, or --persist-to DIR / --database NAME");
  let target: TargetSpec | undefined;
  if (values["to-sqlite"]) target = { kind: "sqlite", file: values["to-sqlite"] };
  else if (values["persist-to"] || values.database) {
    const remote = values.remote && !values.local && !values["persist-to"];
    target = { kind: "d1", database: values.database ?? DEFAULT_DATABASE, remote, persistTo: values["persist-to"] };
  }

  const selective = values.table?.length || values.where?.length || values.out || values.apply || values.cascade || values.mode !== undefined;
  if (values.mode !== undefined && values.mode !== "ignore" && values.mode !== "replace") throw invalid(`--mode is ignore or replace (got ${values.mode})`);
  let maxStatementBytes: number | undefined;
  if (values["max-statement-bytes"] !== undefined) {
    maxStatementBytes = Number(values["max-statement-bytes"]);
    if (!Number.isInteger(maxStatementBytes)) throw invalid(`--max-statement-bytes takes a whole number (got ${values["max-statement-bytes"]})`);
  }

  if (values.actor !== undefined && !values.actor.trim()) throw invalid("--actor needs a name");
  const options: ParsedArgs["options"] = {
    source,
    target,
    force: values.force,
    dryRun: values["dry-run"],
    yes: values.yes,
    keepSql: values["keep-sql"],
    allowUnsigned: values["allow-unsigned"],
    actor: values.actor,
    selective: selective
      ? {
          tables: values.table ?? [],
          where: values.where,
          cascade: values.cascade,
          mode: values.mode as "ignore" | "replace" | undefined,
          out: values.out,
          apply: values.apply,
          maxStatementBytes,
        }
      : undefined,
  };
  if (values.identity !== undefined && !values.identity.trim()) throw invalid("--identity needs a file: --identity FILE");
  return { options, verifyKeyFile: values["verify-key"], identityFile: values.identity, json: values.json, quiet: values.quiet };
}

/** BACKUP_VERIFY_KEY: --verify-key FILE, else the environment, else .dev.vars; parsed here, once. */
async function loadVerifyKeys(file: string | undefined) {
  let text: string | undefined;
  if (file) {
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new BackupError("INVALID_INPUT", `--verify-key ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : errorMessage(e)}`);
    }
  } else text = localSetting("BACKUP_VERIFY_KEY");
  return text ? parseVerifyKeys(text) : [];
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseRestoreArgs>;
  let json = process.argv.includes("--json");
  let verifyKeys: RestoreOptions["verifyKeys"];
  let identities: RestoreOptions["identities"];
  try {
    const eaten = eatenByNpm();
    if (eaten.length) {
      // An eaten --dry-run must never turn into a real restore: stop, and say how to fix it.
      throw new BackupError(
        "INVALID_INPUT",
        `npm took ${eaten.map((o) => `--${o}`).join(", ")} for itself (and left only their values): put -- before the restore's options, e.g. npm run restore -- <backup> --to-sqlite restored.db`,
      );
    }
    parsed = parseRestoreArgs(process.argv.slice(2));
    if (parsed === "help") {
      console.log(HELP);
      return 0;
    }
    verifyKeys = await loadVerifyKeys(parsed.verifyKeyFile);
    identities = loadAgeIdentities(parsed.identityFile);
  } catch (e) {
    return report(e, json);
  }
  json = parsed.json;
  // From here on temporary files exist: Ctrl-C and kill remove them before exiting (130/143).
  installSignalCleanup((signal) => console.error(`restore: ${signal}: stopped; temporary files removed, the target is unchanged unless a step above said it completed`));
  const options: RestoreOptions = {
    ...parsed.options,
    verifyKeys,
    identities,
    reporter: createReporter({ quiet: parsed.quiet }),
    ask: process.stdin.isTTY ? ask : undefined,
  };
  try {
    const result = await runRestore(options);
    console.log(json ? JSON.stringify(result, null, 2) : formatResult(result));
    return result.ok ? 0 : 1;
  } catch (e) {
    return report(e, json);
  }
}

function report(e: unknown, json: boolean): number {
  const code = isBackupError(e) ? e.code : "INTERNAL";
  const details = isBackupError(e) ? e.details : undefined;
  const dryRun = details?.dryRun as RestoreResult | undefined;
  if (json) {
    const { dryRun: _omit, ...rest } = details ?? {};
    console.log(JSON.stringify({ ok: false, error: { code, message: errorMessage(e), ...rest }, dryRun }, null, 2));
  } else {
    if (dryRun) console.log(formatResult(dryRun).replace(/\nDRY RUN: .*$/, "\nREFUSED: the target is not empty; nothing was changed."));
    console.error(`restore: ${code}: ${errorMessage(e)}`);
    // Only a bug has a stack worth showing; every expected failure is one line.
    if (!isBackupError(e) && e instanceof Error && e.stack) console.error(e.stack);
  }
  return exitCodeFor(e);
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`restore: ${errorMessage(e)}`);
      process.exit(1);
    },
  );
}
