// `npm run restore -- <backup> [options]`: restore a backup, safely. Parses arguments and prints;
// all the work is in lib/restore (runRestore). See --help.
import readline from "node:readline";
import { parseArgs } from "node:util";
import { BackupError, errorMessage, isBackupError } from "../lib/errors";
import { BUCKET_NAME as DEFAULT_BUCKET, DATABASE_NAME as DEFAULT_DATABASE } from "../lib/names";
import { type BackupSource, createReporter, formatResult, type RestoreOptions, type RestoreResult, runRestore, type TargetSpec } from "../lib/restore";

const HELP = `usage: npm run restore -- <backup> [target] [options]
       npm run restore -- --file FILE [--manifest FILE] [target] [options]

Restores a backup made by d1-backup, safe by default: the backup is downloaded and verified
against its manifest (object sha256, full gzip decompression, SQL sha256, end marker, format
version, backup name) before anything is touched; a target that is not empty is refused (with a
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
  --file FILE               a downloaded .sql.gz (or plain .sql) instead of a bucket
  --manifest FILE           its manifest (default: <name>.manifest.json beside the file)
  --no-manifest             restore a file without its manifest: only the gzip and the end marker
                            are checked, row counts are not compared (last resort)

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
  --force                   overwrite a non-empty target. SQLite: the file is replaced. D1: every
                            user table, view and trigger is dropped first (children before parents)
                            in the same file as the dump (one transaction locally); remote takes a
                            Time Travel bookmark first and refuses to go on without one
  --yes                     do not ask to type the database name before changing a remote database

Selective restore (put back rows; never deletes or overwrites anything)
  --table NAME              a table to put back (repeatable; parents are ordered before children)
  --where "SQL EXPR"        only rows matching this expression (applies to every --table)
  --out FILE                the INSERT OR IGNORE file to write (default: put-back-<backup>.sql);
                            statements stay under D1's 100 KB limit
  --apply                   also apply it to the target (default target: local ${DEFAULT_DATABASE};
                            or --persist-to / --database / --to-sqlite) and check every selected
                            row is there afterwards
  --max-statement-bytes N   largest statement in the put-back file (default 16384, max 100000)

Output
  --keep-sql FILE           also keep the verified plain SQL
  --json                    print the result as JSON (progress still goes to stderr)
  --quiet                   no progress on stderr
  --help

Exit codes: 0 restored and checked (or dry run), 1 verification/restore/check failed,
2 invalid arguments, 3 refused: the target is not empty (nothing changed).

Examples
  npm run restore -- database-2026-01-15-02-00-00 --persist-to restore-check
  npm run restore -- database-2026-01-15-02-00-00 --to-sqlite restored.db --dry-run
  npm run restore -- database-2026-01-15-02-00-00 --remote --database tech-support-db-restored
  npm run restore -- database-2026-01-15-02-00-00 --table ticket_comments --where "ticket_id = 42" --out put-back.sql
  npm run restore -- --file ./database-2026-01-15-02-00-00.sql.gz --to-sqlite restored.db`;

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

export function parseRestoreArgs(argv: string[]): { options: RestoreOptions; json: boolean; quiet: boolean } | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: "string" },
      manifest: { type: "string" },
      "no-manifest": { type: "boolean", default: false },
      remote: { type: "boolean", default: false },
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
      where: { type: "string" },
      out: { type: "string" },
      apply: { type: "boolean", default: false },
      "max-statement-bytes": { type: "string" },
      "keep-sql": { type: "string" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return "help";
  const invalid = (m: string) => new BackupError("INVALID_INPUT", m);
  if (positionals.length > 1) throw invalid(`one backup at a time (got ${positionals.join(", ")})`);
  const name = positionals[0];

  let source: BackupSource;
  if (values.file) {
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

  const selective = values.table?.length || values.where || values.out || values.apply;
  let maxStatementBytes: number | undefined;
  if (values["max-statement-bytes"] !== undefined) {
    maxStatementBytes = Number(values["max-statement-bytes"]);
    if (!Number.isInteger(maxStatementBytes)) throw invalid(`--max-statement-bytes takes a whole number (got ${values["max-statement-bytes"]})`);
  }

  const options: RestoreOptions = {
    source,
    target,
    force: values.force,
    dryRun: values["dry-run"],
    yes: values.yes,
    keepSql: values["keep-sql"],
    selective: selective
      ? { tables: values.table ?? [], where: values.where, out: values.out, apply: values.apply, maxStatementBytes }
      : undefined,
  };
  return { options, json: values.json, quiet: values.quiet };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseRestoreArgs>;
  let json = process.argv.includes("--json");
  try {
    parsed = parseRestoreArgs(process.argv.slice(2));
  } catch (e) {
    return report(e, json);
  }
  if (parsed === "help") {
    console.log(HELP);
    return 0;
  }
  json = parsed.json;
  const options: RestoreOptions = {
    ...parsed.options,
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
