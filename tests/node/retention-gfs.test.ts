// Two years of daily backups against real local D1/R2, each with a backup time of its own (the
// CLI's --at: the first and the last through `npm run backup -- --at` itself, the last week through
// the local worker's call of the same library, the 720 days between as copies of the first under
// their own names, for speed), then `--cleanup --dry-run` and `--cleanup`: exactly the
// grandfather-father-son set of the default BACKUP_RETENTION stays, with the reasons the dry run
// printed; everything else is gone from R2; keys that are not backups are untouched. Then the same
// two years in an off-site bucket (a real S3 server): the off-site step's retention, by that
// bucket's own listing, leaves exactly the same set there.
//
// The expected set is computed here by walking the periods back from the reference day (calendar
// arithmetic on Date.UTC), not with the planner's day/week/month indexes.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupNameFor, keysFor } from "../../lib/backup/keys";
import { openLocalPlatform, PROJECT_ROOT, startLocalWorker } from "../../lib/local";
import { parseRetentionSetting } from "../../lib/backup";
import { applyOffsiteRetention, OffsiteClient, offsiteKeyFor, parseOffsiteConfig } from "../../lib/offsite";
import { cloneBackup } from "../helpers/clone-backups";
import { d1File, migrateLocal, sqlite, tempDir } from "../helpers/local";
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3Server } from "../helpers/s3-server";

const TSX = path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const DAY = 24 * 60 * 60 * 1000;
// 2025-01-03 … 2027-01-02 at 02:00 UTC: 730 days, ending inside 2026-W53 (2026-12-28 … 2027-01-03).
const FIRST = Date.UTC(2025, 0, 3, 2);
const COUNT = 730;
const times = Array.from({ length: COUNT }, (_, i) => new Date(FIRST + i * DAY));
const NOW = new Date("2027-01-02T12:00:00Z");
const OFFSITE_BUCKET = "gfs-offsite";
const FOREIGN: Record<string, string> = {
  "clients/acme/contract.pdf": "%PDF-1.7 contract",
  "backups/notes.txt": "restore notes",
  "backups/database-2025-01-03-02-00-00.sql.gz.bak": "a copy someone made",
  "backups/old/database-2025-01-04-02-00-00.sql.gz": "nested",
  "backups/database-2025-02-31-02-00-00.sql.gz": "February 31st",
};

let persistTo: string;
const timings: Record<string, number> = {};

function cli(args: string[]) {
  const t = Date.now();
  const r = spawnSync(TSX, [path.join(PROJECT_ROOT, "scripts", "backup.ts"), "--persist-to", persistTo, ...args], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, BACKUP_RETENTION: "daily=30,weekly=12,monthly=24", BACKUP_SIGNING_KEY: "" },
  });
  timings[`cli ${args[0]}${args.includes("--dry-run") ? " --dry-run" : ""}`] = Date.now() - t;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The GFS set, walked period by period: name → reasons in the planner's order. */
function expectedKept(backups: Date[], now: Date): Map<string, string[]> {
  const newestFirst = [...backups].sort((a, b) => b.getTime() - a.getTime());
  const ref = new Date(Math.min(now.getTime(), newestFirst[0].getTime()));
  const reasons = new Map<string, string[]>();
  const add = (d: Date | undefined, why: string) => {
    if (!d) return;
    const name = backupNameFor(d);
    reasons.set(name, [...(reasons.get(name) ?? []), why]);
  };
  const newestIn = (start: number, end: number) => newestFirst.find((d) => d.getTime() >= start && d.getTime() < end);
  newestFirst.slice(0, 7).forEach((d) => add(d, "newest 7"));
  const [y, m, dd] = [ref.getUTCFullYear(), ref.getUTCMonth(), ref.getUTCDate()];
  for (let i = 0; i < 30; i++) {
    const start = Date.UTC(y, m, dd - i);
    add(newestIn(start, Date.UTC(y, m, dd - i + 1)), `daily ${new Date(start).toISOString().slice(0, 10)}`);
  }
  const monday = Date.UTC(y, m, dd - ((ref.getUTCDay() + 6) % 7));
  for (let i = 0; i < 12; i++) {
    const start = monday - i * 7 * DAY;
    // ISO week: the year of its Thursday; week 1 is the one holding 4 January.
    const weekYear = new Date(start + 3 * DAY).getUTCFullYear();
    const jan4 = new Date(Date.UTC(weekYear, 0, 4));
    const week1 = jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * DAY;
    const week = Math.round((start - week1) / (7 * DAY)) + 1;
    add(newestIn(start, start + 7 * DAY), `weekly ${weekYear}-W${String(week).padStart(2, "0")}`);
  }
  for (let i = 0; i < 24; i++) {
    const start = Date.UTC(y, m - i, 1);
    add(newestIn(start, Date.UTC(y, m - i + 1, 1)), `monthly ${new Date(start).toISOString().slice(0, 7)}`);
  }
  return reasons;
}

async function bucketKeys(): Promise<Map<string, string>> {
  const platform = await openLocalPlatform({ persistTo });
  try {
    const bucket = platform.env.DOCUMENTS;
    const keys = new Map<string, string>();
    let cursor: string | undefined;
    do {
      const page = await bucket.list({ cursor });
      for (const o of page.objects) keys.set(o.key, FOREIGN[o.key] !== undefined ? await (await bucket.get(o.key))!.text() : "");
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return keys;
  } finally {
    await platform.dispose();
  }
}

async function cloneBackups(source: Date, at: Date[]): Promise<void> {
  const platform = await openLocalPlatform({ persistTo });
  try {
    await cloneBackup(platform.env.DOCUMENTS, backupNameFor(source), at);
  } finally {
    await platform.dispose();
  }
}

beforeAll(async () => {
  persistTo = tempDir("gfs");
  let t = Date.now();
  migrateLocal(persistTo);
  // A tiny database: the backup system's own two tables, so each backup is quick.
  sqlite(
    d1File(persistTo),
    "PRAGMA foreign_keys = OFF;" +
      ["ticket_comments", "invoice_items", "payments", "appointments", "time_entries", "notifications", "documents", "invoices", "tickets", "projects", "clients", "users"]
        .map((table) => `DROP TABLE ${table};`)
        .join(""),
  );
  const platform = await openLocalPlatform({ persistTo });
  for (const [key, text] of Object.entries(FOREIGN)) await platform.env.DOCUMENTS.put(key, text);
  await platform.dispose();
  timings.setup = Date.now() - t;

  // The first through the CLI itself.
  const first = cli(["--at", times[0].toISOString()]);
  expect(first.code, first.out + first.err).toBe(0);
  expect(JSON.parse(first.out).backup).toMatchObject({ key: keysFor(backupNameFor(times[0])).object, timestamp: times[0].toISOString() });

  t = Date.now();
  const worker = await startLocalWorker({ persistTo });
  // wrangler's bundler always watches the worker's sources (node_modules included): a file changed
  // on this machine meanwhile restarts the worker, and workerd fails the POSTs in flight with a
  // 503. Such a backup is made again (a half-written one is a leftover the cleanup removes); one
  // the restart let finish answers BACKUP_EXISTS, which is as good.
  let restarts = 0;
  const backupAt = async (at: Date, body: Record<string, unknown>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await worker.call<{ success: boolean; error?: { code: string } }>("/backup", { method: "POST", body: { now: at.toISOString(), ...body } });
        if (r.status === 200 || (attempt > 0 && r.body.error?.code === "BACKUP_EXISTS")) return;
        if (!(attempt < 6 && r.status === 409 && r.body.error?.code === "BACKUP_IN_PROGRESS")) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
      } catch (e) {
        if (attempt >= 6 || !/restarted mid-request/.test(String(e))) throw e;
        restarts++;
      }
      await new Promise((resolve) => setTimeout(resolve, 3000)); // a dead run's 10 s lease expires meanwhile
    }
  };
  try {
    // The bulk: the first real backup again under each day's name and time (retention reads names
    // and manifests, never the data), written as a backup is sealed: object, then manifest. The
    // last week is made for real, one by one through runBackup under the lease, the call `--at` makes.
    await cloneBackups(times[0], times.slice(1, COUNT - 8));
    for (const at of times.slice(COUNT - 8, COUNT - 1)) await backupAt(at, { leaseTtlMs: 10_000 });
  } finally {
    await worker.dispose();
  }
  if (restarts) console.log(`retention-gfs: the local worker restarted during the backups; ${restarts} made again`);
  timings[`${COUNT - 9} copies + 7 backups via the worker`] = Date.now() - t;

  // And the newest through the CLI.
  const last = cli(["--at", times[COUNT - 1].toISOString()]);
  expect(last.code, last.out + last.err).toBe(0);
  // Hundreds of backups: well past the default hook timeout on a loaded machine.
}, 900_000);

afterAll(() => {
  console.log(`retention-gfs timings (ms): ${JSON.stringify(timings)}`);
});

describe("two years of daily backups, default BACKUP_RETENTION", () => {
  const expected = expectedKept(times, NOW);

  it("the independent computation is what GFS means here", () => {
    // 30 days (2026-12-04 … 2027-01-02), 12 ISO weeks back to 2026-W42, 24 months back to 2025-02.
    expect(expected.get(backupNameFor(times[COUNT - 1]))).toEqual(["newest 7", "daily 2027-01-02", "weekly 2026-W53", "monthly 2027-01"]);
    expect(expected.get("database-2026-12-27-02-00-00")).toEqual(["newest 7", "daily 2026-12-27", "weekly 2026-W52"]);
    expect(expected.get("database-2026-12-31-02-00-00")).toEqual(["newest 7", "daily 2026-12-31", "monthly 2026-12"]);
    expect(expected.get("database-2026-12-26-02-00-00")).toEqual(["daily 2026-12-26"]);
    expect(expected.get("database-2026-10-18-02-00-00")).toEqual(["weekly 2026-W42"]);
    expect(expected.get("database-2025-02-28-02-00-00")).toEqual(["monthly 2025-02"]);
    expect(expected.has("database-2025-01-31-02-00-00")).toBe(false);
    expect(expected.size).toBe(30 + 7 + 22); // weeks W42 … W48 and months 2025-02 … 2026-11 outside the 30 days
  });

  it("--cleanup --dry-run prints each backup's decision and reasons, and deletes nothing", async () => {
    const r = cli(["--cleanup", "--dry-run", "--now", NOW.toISOString()]);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines[0]).toBe(
      "retention: daily 30, weekly 12, monthly 24, newest 7 always kept; periods count back from 2027-01-02T02:00:00.000Z",
    );
    // Leftovers exist only if the worker restarted mid-backup above (see there).
    const decisions = lines
      .slice(1, -1)
      .filter((l) => !l.endsWith("leftover of an interrupted run"))
      .map((l) => /^(keep|delete) +(database-[\d-]+)(?: {2}(.*))?$/.exec(l));
    expect(decisions.every(Boolean), lines.join("\n")).toBe(true);
    expect(decisions).toHaveLength(COUNT);
    // Newest first, one line per backup.
    expect(decisions.map((m) => m![2])).toEqual([...times].reverse().map(backupNameFor));
    const kept = new Map(decisions.filter((m) => m![1] === "keep").map((m) => [m![2], m![3].split(", ")]));
    expect(Object.fromEntries(kept)).toEqual(Object.fromEntries(expected));
    expect(lines.at(-1)).toMatch(new RegExp(`^dry run: would delete ${COUNT - expected.size} backup\\(s\\) and \\d+ leftover key\\(s\\), keep ${expected.size}; nothing was deleted$`));
    expect([...(await bucketKeys()).keys()].filter((k) => k.endsWith(".manifest.json"))).toHaveLength(COUNT);
  });

  it("--cleanup deletes exactly the rest from R2 and touches nothing that is not a backup", async () => {
    const r = cli(["--cleanup", "--now", NOW.toISOString()]);
    expect(r.code, r.err).toBe(0);
    const body = JSON.parse(r.out);
    expect(body.deleted_count).toBe(COUNT - expected.size);
    expect(body.kept).toEqual([...expected.keys()].sort().reverse().map((n) => keysFor(n).object));

    const after = await bucketKeys();
    const backupKeys = [...expected.keys()].flatMap((n) => [keysFor(n).object, keysFor(n).manifest]);
    expect([...after.keys()].sort()).toEqual([...backupKeys, ...Object.keys(FOREIGN)].sort());
    for (const [key, text] of Object.entries(FOREIGN)) expect(after.get(key), key).toBe(text);

    // Applied again at the same time, it finds nothing more to delete.
    const again = JSON.parse(cli(["--cleanup", "--now", NOW.toISOString()]).out);
    expect(again.deleted_count).toBe(0);
  });

  it("the nightly run's off-site step applies the same rule to the off-site bucket by its own listing: the same set stays there", async () => {
    const s3 = await startS3Server([OFFSITE_BUCKET]);
    try {
      const config = parseOffsiteConfig((n) =>
        ({
          OFFSITE_S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
          OFFSITE_S3_BUCKET: OFFSITE_BUCKET,
          OFFSITE_S3_REGION: "us-east-1",
          OFFSITE_S3_ACCESS_KEY_ID: S3_ACCESS_KEY,
          OFFSITE_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY,
        })[n],
      ).config!;
      const client = new OffsiteClient(config);
      // The two years as copies there (what retention reads: names, an object and its manifest),
      // and keys that are not backups.
      const names = times.map(backupNameFor);
      for (let i = 0; i < names.length; i += 16) {
        await Promise.all(
          names.slice(i, i + 16).flatMap((n) => [
            client.putObject(offsiteKeyFor(config, keysFor(n).object), `copy of ${n}`, "application/gzip"),
            client.putObject(offsiteKeyFor(config, keysFor(n).manifest), `{"name":"${n}"}`, "application/json"),
          ]),
        );
      }
      const foreign = ["backups/notes.txt", "backups/database-2025-02-31-02-00-00.sql.gz"];
      for (const k of foreign) await client.putObject(offsiteKeyFor(config, k), "not a backup", "text/plain");

      const report = await applyOffsiteRetention(client, parseRetentionSetting("daily=30,weekly=12,monthly=24").policy!, NOW);
      expect(report).toMatchObject({ kept: expected.size, leftToProvider: null });
      expect(report.deleted).toHaveLength(COUNT - expected.size);
      const left = (await client.listObjects(config.prefix)).map((o) => o.key).sort();
      const want = [...expected.keys()].flatMap((n) => [keysFor(n).object, keysFor(n).manifest]);
      expect(left).toEqual([...want, ...foreign].map((k) => offsiteKeyFor(config, k)).sort());
    } finally {
      await s3.stop();
    }
  });
});

