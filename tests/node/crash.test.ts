// A backup killed mid-run (SIGKILL of the CLI and the workerd it runs the backup in, then of the
// app's server while an admin's POST runs): the next backup succeeds within one lease TTL, the
// dead run is logged as interrupted, its open multipart upload is aborted and nothing it wrote is
// left. Real CLI, real app build under `wrangler pages dev`, real local D1/R2, a database big
// enough that the backup takes a few seconds.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { listBackups } from "../../lib/backup";
import { keysFor } from "../../lib/backup/keys";
import { openLocalPlatform, PROJECT_ROOT } from "../../lib/local/platform";
import { getBackupHealth } from "../../lib/monitor";
import { seedDemoData } from "../../lib/seed";
import { ensureAppBuild, startApp } from "../helpers/app";
import { createTestSigner, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY } from "../helpers/clerk";
import { d1File, freshPlatform, sqliteJson } from "../helpers/local";

const TTL_S = 5;
let persistTo: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  const platform = await freshPlatform();
  persistTo = platform.persistTo;
  try {
    await seedDemoData(platform.env.DB, { rows: 400_000 });
  } finally {
    await platform.dispose();
  }
}, 300_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, "SIGKILL");
});

/** The backup CLI in its own process group, so a kill reaches the workerd it starts too. */
function backupCli(): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/backup.ts", "--persist-to", persistTo, "--lease-ttl", String(TTL_S)], {
    cwd: PROJECT_ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on("close", (code) => resolve({ code, out })));
  return { child, done };
}

type LeaseRow = { owner: string; expires_at: string; state: string | null };
type Dead = { name: string; uploads: { key: string; uploadId: string }[] };

/** Polls the lease until the run has an open multipart upload recorded: it is mid-upload. */
async function waitMidUpload(running: () => boolean): Promise<Dead> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && running()) {
    const row = leaseRow();
    if (row?.state && JSON.parse(row.state).uploads.length > 0) return JSON.parse(row.state) as Dead;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the backup finished (or never started an upload) before it could be killed: seed more rows");
}

/** The interrupted run's failure row, and that nothing it left remains in the bucket. */
async function expectLoggedAndCleaned(dead: Dead, trigger: string, goodKeys: string[]): Promise<void> {
  const failed = sqliteJson<{ entity_id: string; details: string }>(
    d1File(persistTo),
    `SELECT entity_id, details FROM activity_log WHERE action = 'database_backup_failed' AND entity_id = '${keysFor(dead.name).object}';`,
  );
  expect(failed).toHaveLength(1);
  const details = JSON.parse(failed[0].details);
  expect(details).toMatchObject({ trigger, code: "INTERRUPTED", left: { staging: keysFor(dead.name).staging } });
  expect(details.left.uploads.length).toBeGreaterThan(0);
  expect(details.aborted).toEqual(details.left.uploads);
  expect(details.warnings).toEqual([]);
  expect(sqliteJson(d1File(persistTo), "SELECT * FROM backup_lock;")).toEqual([]);

  const platform = await openLocalPlatform({ persistTo });
  try {
    const bucket = platform.env.DOCUMENTS;
    const listing = await listBackups(bucket);
    expect(listing.backups.map((b) => b.key).sort()).toEqual([...goodKeys].sort());
    expect(listing.incomplete).toEqual([]);
    expect((await bucket.list({ prefix: "backups/.staging/" })).objects).toEqual([]);
    for (const u of details.aborted as { key: string; uploadId: string }[]) {
      await expect(bucket.resumeMultipartUpload(u.key, u.uploadId).uploadPart(99, new Uint8Array(10))).rejects.toThrow();
    }
    // The interrupted run is behind a newer good backup: health is ok again.
    expect((await getBackupHealth({ db: platform.env.DB, bucket })).status).toBe("ok");
  } finally {
    await platform.dispose();
  }
}
function leaseRow(): LeaseRow | null {
  try {
    return sqliteJson<LeaseRow>(d1File(persistTo), "SELECT owner, expires_at, state FROM backup_lock;")[0] ?? null;
  } catch {
    return null; // the database is busy being written: ask again
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

let cliBackupKey: string;

it("SIGKILL of the CLI mid-upload: the next backup succeeds within the lease TTL; the dead run is logged and cleaned", async () => {
  const first = backupCli();
  const dead = await waitMidUpload(() => first.child.exitCode === null);
  process.kill(-first.child.pid!, "SIGKILL");
  const killedAt = Date.now();
  await first.done;
  for (let i = 0; i < 50 && alive(first.child.pid!); i++) await new Promise((r) => setTimeout(r, 100));
  expect(alive(first.child.pid!), "workerd outlived the kill").toBe(false);

  // Back up again right away, as a person or the cron would, until it is let in.
  let attempts = 0;
  let last: { code: number | null; out: string };
  do {
    attempts++;
    last = await backupCli().done;
    if (last.code !== 0) expect(last.out).toContain("BACKUP_IN_PROGRESS");
  } while (last.code !== 0 && Date.now() - killedAt < 60_000);
  const recoveredMs = Date.now() - killedAt;
  expect(last.code, last.out).toBe(0);
  const made = JSON.parse(last.out.slice(last.out.indexOf("{"))) as { backup: { key: string; timestamp: string } };
  // The backup's timestamp is when the next run started, holding the lease it took over.
  const startedMs = Date.parse(made.backup.timestamp) - killedAt;
  console.log(
    `CLI killed → next backup started ${(startedMs / 1000).toFixed(1)} s, finished ${(recoveredMs / 1000).toFixed(1)} s later ` +
      `(lease TTL ${TTL_S} s, ${attempts} attempt(s))`,
  );
  // Let in within one TTL, plus the CLI's start (workerd); then its own backup of 400k rows.
  expect(startedMs).toBeLessThan((TTL_S + 15) * 1000);
  expect(recoveredMs).toBeLessThan((TTL_S + 60) * 1000);
  await expectLoggedAndCleaned(dead, "cli", [made.backup.key]);
  cliBackupKey = made.backup.key;
}, 300_000);

it("SIGKILL of the app's server during an admin's POST: the next POST succeeds within the lease TTL; the dead run is logged and cleaned", async () => {
  expect(cliBackupKey, "runs after the CLI test, on its state").toBeTruthy();
  await ensureAppBuild();
  const signer = await createTestSigner();
  const vars = {
    CLERK_PUBLISHABLE_KEY: TEST_PUBLISHABLE_KEY,
    CLERK_SECRET_KEY: TEST_SECRET_KEY,
    CLERK_JWT_KEY: signer.publicPem,
    BACKUP_LEASE_TTL_SECONDS: String(TTL_S),
  };
  const post = async (server: Awaited<ReturnType<typeof startApp>>) =>
    server.request("/api/admin/backup", { method: "POST", headers: { authorization: `Bearer ${await signer.token()}` } });

  let server = await startApp({ persistTo, vars });
  try {
    let serverUp = true;
    const inFlight = post(server).then(
      (res) => res,
      (e: Error) => e, // the connection dies with the server
    );
    void inFlight.finally(() => (serverUp = false));
    const dead = await waitMidUpload(() => serverUp);
    await server.crash();
    const killedAt = Date.now();
    expect(await inFlight).toBeInstanceOf(Error);

    server = await startApp({ persistTo, vars });
    let attempts = 0;
    let res;
    do {
      attempts++;
      res = await post(server);
      if (res.status !== 200) {
        expect(res.status, res.text).toBe(409);
        expect(res.json().error.code).toBe("BACKUP_IN_PROGRESS");
        await new Promise((r) => setTimeout(r, 500));
      }
    } while (res.status !== 200 && Date.now() - killedAt < 60_000);
    const recoveredMs = Date.now() - killedAt;
    expect(res.status, res.text).toBe(200);
    const made = res.json().backup as { key: string; timestamp: string };
    const startedMs = Date.parse(made.timestamp) - killedAt;
    console.log(
      `server killed → restarted, next POST's backup started ${(startedMs / 1000).toFixed(1)} s after the kill, finished ${(recoveredMs / 1000).toFixed(1)} s ` +
        `(lease TTL ${TTL_S} s, ${attempts} attempt(s))`,
    );
    // The restart of `wrangler pages dev` itself takes a few seconds on two cores.
    expect(startedMs).toBeLessThan((TTL_S + 30) * 1000);
    await server.stop();
    await expectLoggedAndCleaned(dead, "manual", [cliBackupKey, made.key]);
  } finally {
    await server.stop();
  }
}, 400_000);
