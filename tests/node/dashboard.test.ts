// The admin dashboard in a real browser: Debian's Chromium driven by playwright-core (never a
// downloaded browser) against the production build under `wrangler pages dev`, real local D1/R2,
// real Clerk middleware. The browser authenticates the way Clerk's own frontend leaves it: a
// session token in the __session cookie, __client_uat, and (a development instance) a dev-browser
// cookie; the token is an RS256 JWT verified against CLERK_JWT_KEY like any other. Also the status
// routes, and the cross-site check on cookie-authenticated changes.
// A screenshot of the dashboard is kept in test-artifacts/.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../../lib/backup/run";
import { openLocalPlatform, PROJECT_ROOT } from "../../lib/local/platform";
import { seedDemoData } from "../../lib/seed/seed";
import { ensureAppBuild, freePort, startApp, type AppServer } from "../helpers/app";
import { createTestSigner, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, type TestSigner } from "../helpers/clerk";
import { d1File, migrateLocal, sqlite, sqliteJson, tempDir } from "../helpers/local";

const ARTIFACTS = path.join(PROJECT_ROOT, "test-artifacts");
const OLD_BACKUPS = 8; // 2020: all stale, and past the 30 days, but the newest 7 are always kept
const EXTRA_ACTIVITY = 15; // with the 8 backups' entries: 23, more than one page of 20
const oldKey = (day: number) => `backups/database-2020-01-0${day}-02-00-00.sql.gz`;
const LEFTOVER = "backups/.staging/database-2020-02-01-02-00-00.sql.gz";

let signer: TestSigner;
let app: AppServer;
let browser: Browser;

async function prepareState(): Promise<string> {
  const persistTo = tempDir("dash-state");
  migrateLocal(persistTo);
  const platform = await openLocalPlatform({ persistTo });
  try {
    const db = platform.env.DB;
    const bucket = platform.env.DOCUMENTS;
    await seedDemoData(db, { rows: 300 });
    await db.exec("DELETE FROM activity_log");
    // Older cleanups first, so the backups below are the newest entries (the feed orders by id).
    await db.batch(
      Array.from({ length: EXTRA_ACTIVITY }, (_, i) =>
        db
          .prepare("INSERT INTO activity_log (user_id, action, details, created_at) VALUES (NULL, 'backup_cleanup_completed', ?, ?)")
          .bind(JSON.stringify({ deleted: [], kept: [], incompleteDeleted: [] }), `2019-12-${String(i + 1).padStart(2, "0")}T03:00:00.000Z`),
      ),
    );
    for (let d = 1; d <= OLD_BACKUPS; d++) {
      await runBackup({ db, bucket, trigger: "cli", now: new Date(Date.UTC(2020, 0, d, 2, 0, 0)) });
    }
    await bucket.put(LEFTOVER, "partial");
  } finally {
    await platform.dispose();
  }
  return persistTo;
}

/** Cookies as Clerk's frontend leaves them for a signed-in user of a development instance. */
async function signedInContext(claims: Record<string, unknown>): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const token = await signer.token(claims);
  const clientUat = String(Math.floor(Date.now() / 1000) - 60);
  await context.addCookies([
    { name: "__session", value: token, url: app.url },
    { name: "__client_uat", value: clientUat, url: app.url },
    { name: "__clerk_db_jwt", value: "dvb_test_browser", url: app.url },
  ]);
  return context;
}

const cookieHeader = async (claims: Record<string, unknown> = {}) =>
  `__session=${await signer.token(claims)}; __client_uat=${Math.floor(Date.now() / 1000) - 60}; __clerk_db_jwt=dvb_test`;
const bearer = async (claims: Record<string, unknown> = {}) => ({ authorization: `Bearer ${await signer.token(claims)}` });

async function listedKeys(): Promise<string[]> {
  const res = await app.request("/api/admin/backup", { headers: await bearer() });
  expect(res.status, res.text).toBe(200);
  return res.json().backups.map((b: { key: string }) => b.key);
}

const rowCount = (page: Page, testId: string) => page.locator(`[data-testid="${testId}"]`).count();

async function waitForRows(page: Page, testId: string, n: number): Promise<void> {
  await page.waitForFunction(([id, want]) => document.querySelectorAll(`[data-testid="${id}"]`).length === want, [testId, n] as const, {
    timeout: 30_000,
  });
}

beforeAll(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const [build, persistTo] = await Promise.all([ensureAppBuild(), prepareState()]);
  console.log(`app build: ${build.built ? `built in ${(build.ms / 1000).toFixed(1)} s` : "up to date"}`);
  signer = await createTestSigner();
  app = await startApp({
    persistTo,
    // The health endpoint is read before and right after a backup: no 30 s memo in between.
    vars: { CLERK_PUBLISHABLE_KEY: TEST_PUBLISHABLE_KEY, CLERK_SECRET_KEY: TEST_SECRET_KEY, CLERK_JWT_KEY: signer.publicPem, PUBLIC_HEALTH_CACHE_SECONDS: "0" },
  });
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    // As root in a sandbox, on a closed network: no sandbox, no background connections.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 480_000); // waits for the app build another test file may be making

afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

describe("who may see /admin/backups", () => {
  it("signed out: redirected to sign in, never the page; the API answers 401", async () => {
    const res = await app.request("/admin/backups");
    expect(res.status).toBe(307);
    expect(res.headers.location).toMatch(/sign-in|handshake/);
    expect(res.text).not.toContain("Database backups");
    expect((await app.request("/api/admin/backup/status")).status).toBe(401);
  });

  it("signed-in non-admin: a 403 page in the browser, 403 from the status API", async () => {
    const context = await signedInContext({ sub: "user_member_1", metadata: { role: "member" } });
    try {
      const page = await context.newPage();
      const res = await page.goto(`${app.url}/admin/backups`);
      expect(res?.status()).toBe(403);
      expect(await page.textContent("h1")).toBe("403 Forbidden");
      expect(await page.content()).not.toContain("Back up now");
    } finally {
      await context.close();
    }
    const status = await app.request("/api/admin/backup/status", { headers: await bearer({ metadata: { role: "member" } }) });
    expect(status.status).toBe(403);
    expect(status.json().error.code).toBe("FORBIDDEN");
  });
});

describe("status endpoints", () => {
  it("GET /api/health/backup (no auth) says only stale and the age: 503 while the newest backup is from 2020", async () => {
    const res = await app.request("/api/health/backup");
    expect(res.status).toBe(503);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(["age_hours", "status"]);
    expect(body.status).toBe("stale");
    // The newest backup was taken 2020-01-08 02:00 UTC.
    const expected = (Date.now() - Date.UTC(2020, 0, 8, 2)) / 3_600_000;
    expect(Math.abs(body.age_hours - expected)).toBeLessThan(1);
    expect(res.text).not.toMatch(/backups\/|database-|\.sql|tickets|clients/);
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  it("GET /api/admin/backup/status (admin): health with the last good backup, the next run, no run holding the lock", async () => {
    const res = await app.request("/api/admin/backup/status", { headers: await bearer() });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body.success).toBe(true);
    expect(body.running).toBeNull();
    expect(body.health).toMatchObject({
      status: "stale",
      backupsCount: OLD_BACKUPS,
      incompleteCount: 1,
      staleAfterHours: 26,
      lastSuccess: { key: oldKey(8), tables: 15 },
      lastRun: { action: "database_backup_created", ok: true },
    });
    expect(body.health.nextScheduledRun).toMatch(/T02:00:00\.000Z$/);
    expect(Date.parse(body.health.nextScheduledRun) - Date.now()).toBeLessThanOrEqual(24 * 3_600_000);
    expect((await app.request("/api/admin/backup/status?x=1", { headers: await bearer() })).status).toBe(400);
  });
});

describe("the dashboard (admin, in Chromium)", () => {
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    context = await signedInContext({ sub: "user_admin_dash" });
    page = await context.newPage();
  });

  afterAll(async () => {
    await context?.close();
  });

  it("shows the health in red (stale), every backup, the leftover, the activity feed and its pager", async () => {
    const res = await page.goto(`${app.url}/admin/backups`);
    expect(res?.status()).toBe(200);
    expect(await page.getAttribute('[data-testid="health"]', "data-status")).toBe("stale");
    expect(await page.textContent('[data-testid="health-status"]')).toContain("Stale");
    expect(await page.textContent('[data-testid="health-last"]')).toContain("2020-01-08 02:00:00 UTC");
    expect(await page.textContent('[data-testid="health-next"]')).toMatch(/02:00:00 UTC/);
    expect(await rowCount(page, "backup-row")).toBe(OLD_BACKUPS);
    // Newest first, each with its checksum status and download link.
    expect(await page.getAttribute('[data-testid="backup-row"] >> nth=0', "data-key")).toBe(oldKey(8));
    expect(await page.textContent('[data-testid="backup-row"] >> nth=0')).toContain("matches manifest");
    // Made without BACKUP_SIGNING_KEY: the dashboard says so.
    expect(await page.textContent('[data-testid="backup-row"] >> nth=0 >> [data-testid="backup-signature"]')).toBe("unsigned");
    expect(await page.getAttribute('[data-testid="backup-row"] >> nth=0 >> a[download]', "href")).toBe(
      "/api/admin/backup/database-2020-01-08-02-00-00?download=1",
    );
    expect(await rowCount(page, "incomplete-row")).toBe(1);
    // Nothing from the last 30 days yet.
    expect(await page.isVisible('[data-testid="size-chart-empty"]')).toBe(true);
    // 23 entries: 20 on the first page, newest (the backups) first.
    expect(await rowCount(page, "activity-row")).toBe(20);
    expect(await page.getAttribute('[data-testid="activity-row"] >> nth=0', "data-action")).toBe("database_backup_created");
    expect(await page.textContent('[data-testid="activity-pager"]')).toContain("1–20 of 23");
    await page.click("text=Older →");
    await page.waitForURL(/activity_offset=20/);
    expect(await rowCount(page, "activity-row")).toBe(3);
    expect(await page.getAttribute('[data-testid="activity-row"] >> nth=0', "data-action")).toBe("backup_cleanup_completed");
  });

  it("the download link serves the backup to the browser's session", async () => {
    const res = await context.request.get(`${app.url}/api/admin/backup/database-2020-01-08-02-00-00?download=1`);
    expect(res.status()).toBe(200);
    expect(res.headers()["x-backup-sha256"]).toMatch(/^[0-9a-f]{64}$/);
  });

  it("“Back up now”: pending while it runs, then the new backup is listed and the health turns green", async () => {
    await page.goto(`${app.url}/admin/backups`);
    // Hold the request for a moment so the pending state is observable whatever the machine's speed.
    await page.route("**/api/admin/backup", async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    const before = await listedKeys();
    await page.click('[data-testid="backup-now"] button');
    await page.waitForSelector('[data-testid="backup-now"] button[disabled][aria-busy="true"]', { timeout: 5000 });
    expect(await page.textContent('[data-testid="backup-now"] button')).toMatch(/Backing up…/);
    const result = await page.waitForSelector('[data-testid="backup-result"]', { timeout: 60_000 });
    const key = /backups\/database-[\d-]+\.sql\.gz/.exec((await result.textContent()) ?? "")?.[0];
    expect(key).toBeDefined();
    await page.unroute("**/api/admin/backup");

    await waitForRows(page, "backup-row", OLD_BACKUPS + 1);
    expect(await page.getAttribute('[data-testid="backup-row"] >> nth=0', "data-key")).toBe(key);
    await page.waitForSelector('[data-testid="health"][data-status="ok"]', { timeout: 30_000 });
    expect(await page.isVisible('[data-testid="size-chart"] rect')).toBe(true);
    expect(await page.getAttribute('[data-testid="activity-row"] >> nth=0', "data-action")).toBe("database_backup_created");
    expect(await page.textContent('[data-testid="activity-row"] >> nth=0')).toContain("user_admin_dash");
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-admin.png"), fullPage: true });

    // Really in R2, through the API; and the public health is green now.
    expect(await listedKeys()).toEqual([key, ...before]);
    const health = await app.request("/api/health/backup");
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: "ok", age_hours: expect.any(Number) });
  });

  it("“Clean up old backups”: a dry run lists what would go and what stays; Cancel deletes nothing; Confirm deletes exactly that", async () => {
    await page.goto(`${app.url}/admin/backups`);
    await page.click('[data-testid="cleanup"] button');
    await page.waitForSelector('[data-testid="cleanup-confirm"]', { timeout: 30_000 });
    const deleteList = await page.textContent('[data-testid="cleanup-delete-list"]');
    // 9 complete backups, the newest 7 kept: the two oldest go.
    expect(deleteList).toContain("Would be deleted (2)");
    expect(deleteList).toContain(oldKey(1));
    expect(deleteList).toContain(oldKey(2));
    // Kept with the reasons: the new backup is today's daily, weekly and monthly; the 2020 ones stay as the newest 7.
    const keepList = await page.textContent('[data-testid="cleanup-keep-list"]');
    expect(keepList).toContain("Kept (7)");
    expect(await page.textContent('[data-testid="cleanup-keep"] >> nth=0')).toMatch(
      /^backups\/database-[\d-]+\.sql\.gz newest 7, daily \d{4}-\d{2}-\d{2}, weekly \d{4}-W\d{2}, monthly \d{4}-\d{2}$/,
    );
    expect(await page.textContent('[data-testid="cleanup-keep"] >> nth=6')).toBe(`${oldKey(3)} newest 7`);
    expect(await page.textContent('[data-testid="cleanup-confirm"]')).toContain(
      "Retention keeps the newest backup of each of the last 30 days, 12 weeks and 24 months, and the newest 7 always",
    );
    // The leftover is named for 2020 but was written minutes ago: it could be a run still writing.
    expect(await page.isVisible('[data-testid="cleanup-incomplete-list"]')).toBe(false);

    await page.click('[data-testid="cleanup-confirm"] >> text=Cancel');
    expect(await page.isVisible('[data-testid="cleanup-confirm"]')).toBe(false);
    expect((await listedKeys()).length).toBe(OLD_BACKUPS + 1);

    await page.click('[data-testid="cleanup"] button');
    await page.click('[data-testid="cleanup-confirm"] >> text=Delete 2 backup(s)');
    const result = await page.waitForSelector('[data-testid="cleanup-result"]', { timeout: 30_000 });
    expect(await result.textContent()).toContain("2 backup(s) deleted");
    await waitForRows(page, "backup-row", 7);
    expect(await rowCount(page, "incomplete-row")).toBe(1);
    const keys = await listedKeys();
    expect(keys).toHaveLength(7);
    expect(keys).not.toContain(oldKey(1));
    expect(keys).not.toContain(oldKey(2));
  });

  it("while a run holds the lock the button is disabled, and comes back when the run ends; a 409 is shown in place", async () => {
    const db = d1File(app.persistTo);
    const startedAt = new Date().toISOString();
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    const lock = () =>
      sqlite(db, `INSERT INTO backup_lock (name, owner, started_at, expires_at) VALUES ('backup', 'scheduled:dash', '${startedAt}', '${expiresAt}');`);
    const unlock = () => sqlite(db, "DELETE FROM backup_lock WHERE owner = 'scheduled:dash';");
    try {
      lock();
      await page.goto(`${app.url}/admin/backups`);
      expect(await page.isDisabled('[data-testid="backup-now"] button')).toBe(true);
      expect(await page.textContent('[data-testid="backup-locked"]')).toContain(startedAt);
      unlock();
      // The page polls the status every 5 s.
      await page.waitForSelector('[data-testid="backup-now"] button:not([disabled])', { timeout: 20_000 });

      // Loaded while free, then a run starts elsewhere: the click gets 409 and says so.
      lock();
      const keysBefore = await listedKeys();
      await page.click('[data-testid="backup-now"] button');
      const locked = await page.waitForSelector('[data-testid="backup-locked"]', { timeout: 30_000 });
      expect(await locked.textContent()).toContain(startedAt);
      expect(await page.isDisabled('[data-testid="backup-now"] button')).toBe(true);
      expect(await listedKeys()).toEqual(keysBefore);
    } finally {
      unlock();
    }
  });

  it("a failed run shows its code and reason in place, and the health turns red (failing)", async () => {
    const db = d1File(app.persistTo);
    // A real failure: an R*Tree table, which the backup refuses by name rather than dump unrestorably.
    sqlite(db, "CREATE VIRTUAL TABLE ticket_geo USING rtree(id, minx, maxx);");
    try {
      await page.goto(`${app.url}/admin/backups`);
      await page.waitForSelector('[data-testid="backup-now"] button:not([disabled])', { timeout: 20_000 });
      await page.click('[data-testid="backup-now"] button');
      const error = await page.waitForSelector('[data-testid="backup-error"]', { timeout: 60_000 });
      const text = (await error.textContent()) ?? "";
      expect(text).toContain("UNSUPPORTED_SCHEMA");
      expect(text).toContain("ticket_geo");
      await page.waitForSelector('[data-testid="health"][data-status="failing"]', { timeout: 30_000 });
      expect(await page.textContent('[data-testid="health-last-run"]')).toContain("FAILED");
      expect(await page.getAttribute('[data-testid="activity-row"] >> nth=0', "data-action")).toBe("database_backup_failed");
    } finally {
      sqlite(db, "DROP TABLE ticket_geo;");
    }
    expect(sqliteJson(db, "SELECT name FROM sqlite_master WHERE name LIKE 'ticket_geo%';")).toEqual([]);
  });
});

describe("cookie-authenticated changes must come from the portal's own pages", () => {
  it("a cross-site POST with the admin's cookies is refused (403) and runs nothing", async () => {
    const keysBefore = await listedKeys();
    const attempts: Record<string, string>[] = [
      { origin: "https://evil.example.com" },
      { "sec-fetch-site": "cross-site", origin: "https://evil.example.com" },
      {}, // no Origin and no Sec-Fetch-Site: not provably from the portal
    ];
    for (const headers of attempts) {
      const res = await app.request("/api/admin/backup", { method: "POST", headers: { cookie: await cookieHeader(), ...headers } });
      expect(res.status, res.text).toBe(403);
      expect(res.json().error.code).toBe("FORBIDDEN");
      const del = await app.request("/api/admin/backup", { method: "DELETE", headers: { cookie: await cookieHeader(), ...headers } });
      expect(del.status).toBe(403);
    }
    expect(await listedKeys()).toEqual(keysBefore);
  });

  it("the same cookies on a GET, or a Bearer token on a POST, are not affected", async () => {
    expect((await app.request("/api/admin/backup", { headers: { cookie: await cookieHeader() } })).status).toBe(200);
    const dry = await app.request("/api/admin/backup?dry_run=1", { method: "DELETE", headers: await bearer() });
    expect(dry.status, dry.text).toBe(200);
  });
});

/** Fails unless the page fits the viewport: nothing sticks out sideways. */
async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
  expect(scrollWidth, `scrollWidth ${scrollWidth} > innerWidth ${innerWidth}`).toBeLessThanOrEqual(innerWidth);
}

describe("phone width and readable activity", () => {
  it("at 390 px: no horizontal scroll, tables are stacked rows, actions in words, the user's portal name", async () => {
    // The portal knows this admin: users.id is the Clerk user id.
    sqlite(
      d1File(app.persistTo),
      "INSERT OR REPLACE INTO users (id, email, full_name, role) VALUES ('user_admin_dash', 'dana@example.com', 'Dana Admin', 'admin');",
    );
    const context = await signedInContext({ sub: "user_admin_dash" });
    try {
      const page = await context.newPage();
      await page.goto(`${app.url}/admin/backups`);
      expect(await rowCount(page, "dashboard-error")).toBe(0);
      const who = await page.locator('[data-testid="activity-row"][data-action="database_backup_created"] [data-testid="activity-who"]').allTextContents();
      expect(who).toContain("Dana Admin");
      const what = await page.locator('[data-testid="activity-what"]').allTextContents();
      expect(what.every((w) => !/_/.test(w)), what.join(" | ")).toBe(true);
      expect(what).toContain("Backup created");
      await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-1280.png"), fullPage: true });
      await expectNoHorizontalScroll(page);

      await page.setViewportSize({ width: 390, height: 844 });
      await page.reload();
      await expectNoHorizontalScroll(page);
      // Stacked: the header row is hidden and each cell is a block with its label.
      expect(await page.isVisible('[data-testid="backups"] thead')).toBe(false);
      expect(await page.evaluate(() => getComputedStyle(document.querySelector('[data-testid="backup-row"] td')!).display)).toBe("block");
      await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-390.png"), fullPage: true });
    } finally {
      await context.close();
    }
  });
});

// Last: it destroys the app's database.
describe("D1 lost: every table dropped", () => {
  it("still lists the R2 backups with their links, health from R2 alone, a notice, and restore commands to copy", async () => {
    const file = d1File(app.persistTo);
    const tables = sqliteJson<{ name: string }>(file, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%';");
    expect(tables.length).toBeGreaterThan(10);
    sqlite(file, `PRAGMA foreign_keys = OFF; ${tables.map((t) => `DROP TABLE "${t.name}";`).join(" ")}`);
    expect(sqliteJson(file, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%';")).toEqual([]);

    const context = await signedInContext({ sub: "user_admin_dash" });
    try {
      const page = await context.newPage();
      for (const [width, shot] of [
        [1280, "dashboard-d1-lost-1280.png"],
        [390, "dashboard-d1-lost-390.png"],
      ] as const) {
        await page.setViewportSize({ width, height: 900 });
        const res = await page.goto(`${app.url}/admin/backups`);
        expect(res?.status()).toBe(200);
        // A notice, not the red error box.
        expect(await rowCount(page, "dashboard-error")).toBe(0);
        expect(await page.textContent('[data-testid="database-unavailable"]')).toMatch(/database \(tech-support-db\) is unavailable/);
        // Health from R2 alone: the newest backup is old, so stale; the summary says where it came from.
        expect(["stale", "ok"]).toContain(await page.getAttribute('[data-testid="health"]', "data-status"));
        expect(await page.textContent('[data-testid="health"]')).toContain("from R2 alone");
        const n = await rowCount(page, "backup-row");
        expect(n).toBeGreaterThanOrEqual(OLD_BACKUPS - 2);
        const first = page.locator('[data-testid="backup-row"]').first();
        const name = ((await first.getAttribute("data-key")) ?? "").replace(/^backups\//, "").replace(/\.sql\.gz$/, "");
        expect(await first.locator("a[download]").getAttribute("href")).toBe(`/api/admin/backup/${name}?download=1`);
        expect(await first.locator(`a[href="/api/admin/backup/${name}"]`).count()).toBe(1);
        // The newest backup's restore commands are open, exactly as BACKUP_RESTORATION.md has them.
        expect(await first.locator('[data-testid="restore-commands"]').getAttribute("open")).not.toBeNull();
        const commands = await first.locator('[data-testid="restore-command"]').allTextContents();
        expect(commands).toContain(`npm run restore -- ${name} --remote --database tech-support-db-restored --dry-run`);
        expect(commands).toContain(`npm run restore -- ${name} --remote --database tech-support-db-restored`);
        expect(await first.locator('[data-testid="copy"]').count()).toBe(commands.length);
        // Buttons that need D1 are not offered; the feed says why it is empty.
        expect(await rowCount(page, "backup-now")).toBe(0);
        expect(await page.isVisible('[data-testid="activity-unavailable"]')).toBe(true);
        await expectNoHorizontalScroll(page);
        await page.screenshot({ path: path.join(ARTIFACTS, shot), fullPage: true });
      }
      // A chosen backup's commands by link (?restore=<name>), and the manifest still downloads.
      const chosen = "database-2020-01-08-02-00-00";
      await page.goto(`${app.url}/admin/backups?restore=${chosen}`);
      expect(await page.locator(`[data-testid="backup-row"][data-key="backups/${chosen}.sql.gz"] [data-testid="restore-commands"]`).getAttribute("open")).not.toBeNull();
      const manifest = await context.request.get(`${app.url}/api/admin/backup/${chosen}`);
      expect(manifest.status()).toBe(200);
    } finally {
      await context.close();
    }
  });
});

describe("npm run demo's one-click sign-in (scripts/demo-signin.ts)", () => {
  it("in Chromium, the link signs in as the admin and lands on the dashboard, through the app's own verification", async () => {
    const appPort = new URL(app.url).port;
    const signinPort = String(await freePort());
    const child = spawn(
      process.execPath,
      [path.join(PROJECT_ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/demo-signin.ts", "--app-port", appPort, "--port", signinPort, "--parent", String(process.pid)],
      { cwd: PROJECT_ROOT, env: { ...process.env, D1B_DEMO_TOKEN: await signer.token({ sub: "user_demo_admin" }) }, stdio: ["ignore", "ignore", "pipe"] },
    );
    try {
      let err = "";
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no sign-in link printed: ${err}`)), 60_000);
        child.stderr!.on("data", (d) => {
          err += d;
          if (err.includes(`http://localhost:${signinPort}/`)) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on("exit", (code) => reject(new Error(`demo-signin exited (${code}): ${err}`)));
      });
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const page = await context.newPage();
        // The redirect and the page's HTML are what is checked; waiting for every script to load
        // too timed out once at 30 s on a loaded CI machine.
        const res = await page.goto(`http://localhost:${signinPort}/`, { waitUntil: "domcontentloaded" });
        expect(page.url()).toBe(`http://localhost:${appPort}/admin/backups`);
        expect(res?.status()).toBe(200);
        expect(await page.textContent("h1")).toContain("Database backups");
        // The cookie is HttpOnly: the page's scripts never see the token.
        expect(await page.evaluate(() => document.cookie)).not.toContain("__session");
      } finally {
        await context.close();
      }
      // Without the link's cookies the same browser is sent to sign in: the app grants nothing itself.
      const stranger = await browser.newContext();
      try {
        const res = await (await stranger.newPage()).request.get(`http://localhost:${appPort}/admin/backups`, { maxRedirects: 0 });
        expect(res.status()).toBe(307);
      } finally {
        await stranger.close();
      }
    } finally {
      child.kill("SIGTERM");
    }
  });
});
