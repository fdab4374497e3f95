// `npm run backup [-- --list] [-- --persist-to DIR]`: one backup (or a listing, or a retention
// cleanup) against the local D1/R2 state that `wrangler --local` uses, printing the JSON the API
// returns. The library runs inside workerd, as in production (lib/local/runner.ts).
import { parseRetentionSetting, type RetentionPolicy } from "../lib/backup";
import { localSetting, startLocalWorker } from "../lib/local";
import { OFFSITE_SETTINGS } from "../lib/offsite";
import { parseCli, usageExit } from "./cli-args";

const USAGE = `
usage: npm run backup [-- --persist-to DIR]            one backup; prints the API's JSON
       npm run backup -- --at 2026-01-15T02:00:00Z     a backup named and dated as if made at that time (rehearsals, tests)
       npm run backup -- --list [--persist-to DIR]     complete backups (newest first) and leftovers
       npm run -s backup -- --latest                   the newest complete backup's name, for scripts
       npm run backup -- --cleanup [--dry-run] [--now ISO]
                                                       retention (BACKUP_RETENTION); --dry-run deletes nothing and
                                                       prints each backup's decision with its reasons;
                                                       --now: apply it as if at that time
       --lease-ttl SECONDS                             a shorter lease than the default 120 s (tests)
default state: .wrangler/state (what wrangler --local uses)
signs the manifest with BACKUP_SIGNING_KEY (environment, else .dev.vars; npm run keys makes one); unset: unsigned
encrypts the object to BACKUP_AGE_RECIPIENTS (age1… public keys; npm run keys -- --age makes one): database-….sql.gz.age
with OFFSITE_S3_* set (same sources), copies the backup (and any missing ones) to the off-site bucket and verifies it
BACKUP_RETENTION (environment, else .dev.vars): e.g. daily=30,weekly=12,monthly=24 (the default)
`;

/** A UTC or offset ISO 8601 time, to the second or finer; anything else is a usage error. */
function isoFlag(flag: string, value: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  const t = new Date(m ? value : NaN);
  if (!m || Number.isNaN(t.getTime()) || !realFields(m.slice(1, 7).map(Number)) || t.getUTCFullYear() < 2000 || t.getUTCFullYear() > 9999) {
    usageExit("backup", `${flag} takes a time like 2026-01-15T02:00:00Z (got ${JSON.stringify(value)})`);
  }
  return t;
}

// Date would roll 2026-02-31 over to March: the fields themselves must be a real date and time.
function realFields([y, mo, d, h, mi, s]: number[]): boolean {
  return mo >= 1 && mo <= 12 && d >= 1 && d <= new Date(Date.UTC(y, mo, 0)).getUTCDate() && h < 24 && mi < 60 && s < 60;
}

async function main(): Promise<number> {
  const values = parseCli("backup", USAGE, {
    list: { type: "boolean", default: false },
    latest: { type: "boolean", default: false },
    cleanup: { type: "boolean", default: false },
    "dry-run": { type: "boolean", default: false },
    at: { type: "string" },
    now: { type: "string" },
    "persist-to": { type: "string" },
    "lease-ttl": { type: "string" },
  });
  const modes = (["list", "latest", "cleanup"] as const).filter((m) => values[m]);
  if (modes.length > 1) usageExit("backup", `--${modes[0]} and --${modes[1]} do not go together`);
  if (values.at !== undefined && modes.length) usageExit("backup", `--at is for making a backup, not with --${modes[0]}`);
  if (!values.cleanup && (values["dry-run"] || values.now !== undefined)) usageExit("backup", `${values["dry-run"] ? "--dry-run" : "--now"} goes with --cleanup`);
  const at = values.at === undefined ? undefined : isoFlag("--at", values.at);
  const now = values.now === undefined ? undefined : isoFlag("--now", values.now);
  const ttl = values["lease-ttl"];
  if (ttl !== undefined && !/^[1-9]\d{0,3}$/.test(ttl)) usageExit("backup", `--lease-ttl takes whole seconds from 1 to 9999 (got ${ttl})`);
  const leaseTtlMs = ttl === undefined ? undefined : Number(ttl) * 1000;
  let policy: RetentionPolicy | undefined;
  if (values.cleanup) {
    // Parsed here, this CLI's entry point, before anything starts; the worker gets the policy.
    const parsed = parseRetentionSetting(localSetting("BACKUP_RETENTION"));
    if (parsed.problem !== null) usageExit("backup", parsed.problem);
    policy = parsed.policy;
  }

  const offsite = Object.fromEntries([...OFFSITE_SETTINGS, "OFFSITE_S3_PREFIX", "OFFSITE_S3_PATH_STYLE"].map((n) => [n, localSetting(n)]));
  const worker = await startLocalWorker({ persistTo: values["persist-to"], secrets: { BACKUP_SIGNING_KEY: localSetting("BACKUP_SIGNING_KEY"), BACKUP_AGE_RECIPIENTS: localSetting("BACKUP_AGE_RECIPIENTS"), ...offsite } });
  try {
    if (values.latest) {
      const res = await worker.call<{ backups?: { key: string }[] }>("/list");
      const newest = res.body.backups?.[0];
      if (res.status !== 200 || !newest) {
        console.error(res.status === 200 ? "backup: no complete backup yet" : JSON.stringify(res.body));
        return 1;
      }
      console.log(newest.key.replace(/^backups\//, "").replace(/\.sql\.gz(\.age)?$/, ""));
      return 0;
    }
    if (values.cleanup) {
      const dryRun = values["dry-run"];
      const res = await worker.call<CleanupBody>("/cleanup", { method: "POST", body: { dryRun, now: now?.toISOString(), policy } });
      if (res.status === 200 && dryRun) {
        printDecisions(res.body);
        return 0;
      }
      console.log(JSON.stringify(res.body, null, 2));
      return res.status === 200 ? 0 : 1;
    }
    const res = values.list
      ? await worker.call<unknown>("/list")
      : await worker.call<{ success: boolean; manifest?: unknown }>("/backup", { method: "POST", body: { leaseTtlMs, now: at?.toISOString() } });
    const body = res.body as Record<string, unknown>;
    delete body.manifest; // the CLI prints exactly what the API returns
    console.log(JSON.stringify(body, null, 2));
    return res.status === 200 ? 0 : 1;
  } finally {
    await worker.dispose();
  }
}

interface CleanupBody {
  decisions: { name: string; action: "keep" | "delete"; reasons: string[] }[];
  incomplete_deleted: string[];
  needs_attention: { name: string; reason: string }[];
  policy: { daily: number; weekly: number; monthly: number; newest: number };
  reference: string | null;
}

/** The dry run for people: one line per backup, newest first, then what a real run would remove. */
function printDecisions(b: CleanupBody): void {
  const p = b.policy;
  console.log(`retention: daily ${p.daily}, weekly ${p.weekly}, monthly ${p.monthly}, newest ${p.newest} always kept; periods count back from ${b.reference ?? "(no backups)"}`);
  for (const d of b.decisions) console.log(`${d.action === "keep" ? "keep  " : "delete"} ${d.name}${d.reasons.length ? `  ${d.reasons.join(", ")}` : ""}`);
  for (const key of b.incomplete_deleted) console.log(`delete ${key}  leftover of an interrupted run`);
  for (const n of b.needs_attention) console.log(`attention ${n.name}  ${n.reason}`);
  const del = b.decisions.filter((d) => d.action === "delete").length;
  console.log(`dry run: would delete ${del} backup(s) and ${b.incomplete_deleted.length} leftover key(s), keep ${b.decisions.length - del}; nothing was deleted`);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`backup: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
