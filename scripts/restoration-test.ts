// The quarterly restoration test (run it through scripts/test-restoration.sh). Parses arguments
// and prints; the work is in lib/restoration-test (runRestorationTest).
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { parseVerifyKeys } from "../lib/backup";
import { BackupError, errorMessage, isBackupError } from "../lib/errors";
import { localSetting } from "../lib/local";
import { createReporter, loadAgeIdentities } from "../lib/restore";
import { runRestorationTest } from "../lib/restoration-test";

const HELP = `usage: bash scripts/test-restoration.sh [backup] [--remote] [--persist-to DIR] [--report-dir DIR]
                                        [--log-to-db | --no-log-to-db] [--json] [--quiet]

The quarterly restoration test (BACKUP_TESTING_SCHEDULE.md): picks the newest complete backup
(or the one named), downloads it, verifies it against its manifest, restores it into a
throw-away local D1, checks row counts, foreign keys, quick_check and the schema version, times
every step, and writes docs/backup-tests/YYYY-QN-backup-test.md from the template.

  backup              a backup name or key (default: the newest complete one in the local state)
  --remote            take the backup from the real bucket (needs a name and a Cloudflare login);
                      the restore still goes into a throw-away local D1
  --persist-to DIR    the local state holding the backups and the source database
                      (default: .wrangler/state)
  --report-dir DIR    where the report goes (default: docs/backup-tests)
  --log-to-db         record restoration_test_completed/_failed in activity_log (default: on
                      for local, off for --remote, where it writes to the remote database)
  --no-log-to-db      do not record it
  --verify-key FILE   public key(s) the manifest's signature is checked with (default:
                      BACKUP_VERIFY_KEY from the environment, else .dev.vars)
  --allow-unsigned    test a backup whose signature is missing or does not verify (logged)
  --json              print the result as JSON
Exit code: 0 passed, 1 failed (the report is written either way), 2 invalid arguments (no report).`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      remote: { type: "boolean", default: false },
      "persist-to": { type: "string" },
      "report-dir": { type: "string" },
      "log-to-db": { type: "boolean" },
      "no-log-to-db": { type: "boolean", default: false },
      "work-dir": { type: "string" },
      "verify-key": { type: "string" },
      "allow-unsigned": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new BackupError("INVALID_INPUT", `one backup at a time (got ${positionals.join(", ")})`);
  const keyFile = values["verify-key"];
  if (keyFile && !fs.existsSync(keyFile)) throw new BackupError("INVALID_INPUT", `--verify-key ${keyFile}: no such file`);
  const keyText = keyFile ? fs.readFileSync(keyFile, "utf8") : localSetting("BACKUP_VERIFY_KEY");
  const result = await runRestorationTest({
    backup: positionals[0],
    remote: values.remote,
    persistTo: values["persist-to"],
    reportDir: values["report-dir"],
    logToDb: values["no-log-to-db"] ? false : values["log-to-db"],
    workDir: values["work-dir"],
    reporter: createReporter({ quiet: values.quiet }),
    verifyKeys: keyText ? await parseVerifyKeys(keyText) : [],
    allowUnsigned: values["allow-unsigned"],
    identities: loadAgeIdentities(undefined),
  });
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    const rel = path.relative(process.cwd(), result.reportFile) || result.reportFile;
    console.log(
      [
        `restoration test ${result.passed ? "PASSED" : "FAILED"}: ${result.backupKey ?? "(no backup)"}`,
        `RTO ${result.rtoSeconds} s (objective 1800 s: ${result.withinObjective ? "met" : "NOT met"})`,
        ...(result.error ? [`error: ${result.error.code}: ${result.error.message}`] : []),
        ...(result.restore?.checks?.checks.filter((c) => !c.ok).map((c) => `failed check ${c.check}: ${c.detail}`) ?? []),
        `report: ${rel}`,
        result.logged ? `logged ${result.logged} to activity_log` : result.logWarning ? `warning: ${result.logWarning}` : "not logged to activity_log",
      ].join("\n"),
    );
  }
  return result.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`test-restoration: ${errorMessage(e)}`);
    process.exit(isBackupError(e) && e.code === "INVALID_INPUT" ? 2 : 1);
  },
);
