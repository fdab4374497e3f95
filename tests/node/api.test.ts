// The HTTP API end to end: the production build of the app (next-on-pages) in workerd through
// `wrangler pages dev`, real local D1/R2, real Clerk middleware. Tokens are real RS256 JWTs
// signed by a key pair made here; the app gets its public half as CLERK_JWT_KEY, exactly as a
// deployment gets the Clerk instance's key. Nothing is mocked and nothing is bypassed.
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DUMP_END_MARKER } from "../../lib/backup";
import { runBackup } from "../../lib/backup/run";
import { openLocalPlatform } from "../../lib/local/platform";
import { seedDemoData } from "../../lib/seed/seed";
import { createTestSigner, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, type TestSigner, type TokenOptions } from "../helpers/clerk";
import { ensureAppBuild, startApp, type AppServer, type RawResponse } from "../helpers/app";
import { migrateLocal, sqlite, sqliteJson, d1File, tempDir } from "../helpers/local";

const PORTAL = "http://localhost:3000";
const CRON_SECRET = "cron-secret-0123456789abcdef0123456789abcdef";
const CLIENT_DOC = "clients/acme/contract.pdf";
const CLIENT_DOC_BODY = "CONFIDENTIAL: acme contract";
const LOOKALIKE = "backups/notes.txt";
const OLD_BACKUPS = 8; // from 2020: outside every GFS tier, so only the newest 7 backups keep any of them
const BACKUP_KEY_RE = /^backups\/database-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.sql\.gz$/;

let signer: TestSigner;
const token = (claims?: Record<string, unknown>, opts?: TokenOptions) => signer.token(claims, opts);

let main: AppServer; // full config, azp pinned to PORTAL
let noCron: AppServer; // CRON_SECRET unset, azp not pinned
let broken: AppServer; // CRON_SECRET too short, CLERK_JWT_KEY missing

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** Backup names have one-second resolution: a second backup within the same second is BACKUP_EXISTS. */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 10));
}

function expectError(res: RawResponse, status: number, code: string): { code: string; message: string; details?: Record<string, unknown> } {
  expect(res.status, res.text.slice(0, 500)).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  const body = res.json();
  // Exactly the shared error shape: nothing else at the top level or in `error`.
  expect(Object.keys(body).sort()).toEqual(["error", "success"]);
  expect(body.success).toBe(false);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(Object.keys(body.error).every((k) => ["code", "message", "details"].includes(k))).toBe(true);
  return body.error;
}

/** Prepares a state directory: migrated, seeded, and (optionally) old backups and client documents in R2. */
async function prepareState(opts: { rows?: number; oldBackups?: number; clientDocs?: boolean } = {}): Promise<string> {
  const persistTo = tempDir("api-state");
  migrateLocal(persistTo);
  const platform = await openLocalPlatform({ persistTo });
  try {
    const db = platform.env.DB;
    const bucket = platform.env.DOCUMENTS;
    if (opts.rows) await seedDemoData(db, { rows: opts.rows });
    for (let i = 0; i < (opts.oldBackups ?? 0); i++) {
      await runBackup({ db, bucket, trigger: "cli", now: new Date(Date.UTC(2020, 0, 1 + i, 2, 0, 0)) });
    }
    if (opts.oldBackups) {
      // An interrupted run from long ago: a staged object that never became a backup.
      await bucket.put("backups/.staging/database-2020-02-01-02-00-00.sql.gz", "partial");
    }
    if (opts.clientDocs) {
      await bucket.put(CLIENT_DOC, CLIENT_DOC_BODY);
      await bucket.put(LOOKALIKE, "not a backup");
    }
    await db.exec("DELETE FROM activity_log");
  } finally {
    await platform.dispose();
  }
  return persistTo;
}

/** Reads the app's local D1 directly (sqlite3 on its file) while the server runs. */
function activity(server: AppServer, action: string): { user_id: string | null; entity_id: string | null; details: string }[] {
  return sqliteJson(d1File(server.persistTo), `SELECT user_id, entity_id, details FROM activity_log WHERE action = '${action}' ORDER BY id;`);
}

beforeAll(async () => {
  const build = await ensureAppBuild();
  console.log(`app build: ${build.built ? `built in ${(build.ms / 1000).toFixed(1)} s` : "up to date"}`);

  signer = await createTestSigner({ azp: PORTAL });
  const publicPem = signer.publicPem;

  const clerk = { CLERK_PUBLISHABLE_KEY: TEST_PUBLISHABLE_KEY, CLERK_SECRET_KEY: TEST_SECRET_KEY };
  const started = Date.now();
  const [mainState, noCronState, brokenState] = await Promise.all([
    prepareState({ rows: 4000, oldBackups: OLD_BACKUPS, clientDocs: true }),
    prepareState(),
    prepareState(),
  ]);
  [main, noCron, broken] = await Promise.all([
    startApp({
      persistTo: mainState,
      vars: { ...clerk, CLERK_JWT_KEY: publicPem, CLERK_AUTHORIZED_PARTIES: `${PORTAL}, https://portal.example.com`, CRON_SECRET },
    }),
    // A retention setting with an unknown key: a cleanup here must refuse, naming it.
    startApp({ persistTo: noCronState, vars: { ...clerk, CLERK_JWT_KEY: publicPem, BACKUP_RETENTION: "daily=30,yearly=5" } }),
    startApp({ persistTo: brokenState, vars: { ...clerk, CRON_SECRET: "short" } }),
  ]);
  console.log(`3 states + 3 servers ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // The app build (once per checkout, shared through a lock with the other app tests) plus three
  // seeded states and servers: minutes on two busy cores.
}, 480_000);

afterAll(async () => {
  await Promise.all([main?.stop(), noCron?.stop(), broken?.stop()]);
});

/** The portal's client documents share the bucket: backup routes must never change them. */
async function expectClientDocumentsUntouched(): Promise<void> {
  const platform = await openLocalPlatform({ persistTo: main.persistTo });
  try {
    expect(await (await platform.env.DOCUMENTS.get(CLIENT_DOC))?.text()).toBe(CLIENT_DOC_BODY);
    expect(await platform.env.DOCUMENTS.head(LOOKALIKE)).not.toBeNull();
  } finally {
    await platform.dispose();
  }
}

describe("admin auth (Clerk session token, verified with CLERK_JWT_KEY, no network)", () => {
  it("no token: 401 UNAUTHORIZED in the JSON error shape", async () => {
    const res = await main.request("/api/admin/backup");
    expectError(res, 401, "UNAUTHORIZED");
    expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
  });

  it("garbage, malformed and machine-looking tokens: 401", async () => {
    for (const authorization of ["Bearer garbage", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer a.b.c", "Bearer ak_live_123", `bearer ${await token()}x`]) {
      expectError(await main.request("/api/admin/backup", { headers: { authorization } }), 401, "UNAUTHORIZED");
    }
  });

  it("expired token: 401", async () => {
    const t = await token({}, { iatOffset: -600, nbfOffset: -600, expSeconds: -120 });
    expectError(await main.request("/api/admin/backup", { headers: bearer(t) }), 401, "UNAUTHORIZED");
  });

  it("token not valid yet (nbf in the future): 401", async () => {
    const t = await token({}, { nbfOffset: 300 });
    expectError(await main.request("/api/admin/backup", { headers: bearer(t) }), 401, "UNAUTHORIZED");
  });

  it("admin claims signed with the wrong key: 401", async () => {
    const t = await token({}, { key: signer.strangerKey });
    expectError(await main.request("/api/admin/backup", { headers: bearer(t) }), 401, "UNAUTHORIZED");
    expectError(await main.request("/api/admin/backup", { method: "POST", headers: bearer(t) }), 401, "UNAUTHORIZED");
  });

  it("a tampered payload (role changed after signing): 401", async () => {
    const [h, p, s] = (await token({ metadata: { role: "member" } })).split(".");
    const payload = JSON.parse(Buffer.from(p, "base64url").toString());
    payload.metadata.role = "admin";
    const forged = [h, Buffer.from(JSON.stringify(payload)).toString("base64url"), s].join(".");
    expectError(await main.request("/api/admin/backup", { headers: bearer(forged) }), 401, "UNAUTHORIZED");
  });

  it("wrong azp while CLERK_AUTHORIZED_PARTIES is configured: 401; a listed second origin is accepted", async () => {
    expectError(await main.request("/api/admin/backup", { headers: bearer(await token({ azp: "https://evil.example.com" })) }), 401, "UNAUTHORIZED");
    expectError(await main.request("/api/admin/backup", { headers: bearer(await token({ azp: undefined })) }), 401, "UNAUTHORIZED");
    expect((await main.request("/api/admin/backup", { headers: bearer(await token({ azp: "https://portal.example.com" })) })).status).toBe(200);
  });

  it("without CLERK_AUTHORIZED_PARTIES azp is not pinned (Clerk's default)", async () => {
    const res = await noCron.request("/api/admin/backup", { headers: bearer(await token({ azp: "https://elsewhere.example.com" })) });
    expect(res.status, res.text).toBe(200);
  });

  it("signed-in non-admin: 403 FORBIDDEN on every admin route and method", async () => {
    const member = await token({ sub: "user_member_1", metadata: { role: "member" } });
    const noMetadata = await token({ sub: "user_plain_1", metadata: undefined });
    for (const t of [member, noMetadata]) {
      expectError(await main.request("/api/admin/backup", { headers: bearer(t) }), 403, "FORBIDDEN");
      expectError(await main.request("/api/admin/backup", { method: "POST", headers: bearer(t) }), 403, "FORBIDDEN");
      expectError(await main.request("/api/admin/backup?dry_run=1", { method: "DELETE", headers: bearer(t) }), 403, "FORBIDDEN");
      expectError(await main.request("/api/admin/backup/database-2020-01-01-02-00-00?download=1", { headers: bearer(t) }), 403, "FORBIDDEN");
    }
    expect(activity(main, "database_backup_created")).toEqual([]);
  });

  it("a Clerk token does not open the cron route, and the cron secret does not open admin routes", async () => {
    expectError(await main.request("/api/cron/backup", { headers: bearer(await token()) }), 401, "UNAUTHORIZED");
    expectError(await main.request("/api/admin/backup", { headers: bearer(CRON_SECRET) }), 401, "UNAUTHORIZED");
  });

  it("a browser navigation with an expired token gets 401, not a redirect to Clerk's handshake", async () => {
    const t = await token({}, { iatOffset: -600, nbfOffset: -600, expSeconds: -120 });
    const headers = { ...bearer(t), "sec-fetch-dest": "document", accept: "text/html" };
    expectError(await main.request("/api/admin/backup", { headers }), 401, "UNAUTHORIZED");
    // Same for a session cookie without Clerk's dev-browser token (a dev instance's handshake case).
    expectError(await main.request("/api/admin/backup", { headers: { cookie: `__session=${t}`, "sec-fetch-dest": "document" } }), 401, "UNAUTHORIZED");
  });

  it("/admin pages: strangers are sent to sign in, non-admins get 403, admins pass", async () => {
    const stranger = await main.request("/admin");
    expect([302, 303, 307, 308]).toContain(stranger.status);
    expect(stranger.headers.location).toMatch(/sign-in|redirect_url/);
    expect((await main.request("/admin", { headers: bearer(await token({ metadata: { role: "member" } })) })).status).toBe(403);
    // No admin pages exist yet: an admin gets through the middleware to Next's 404.
    expect((await main.request("/admin", { headers: bearer(await token()) })).status).toBe(404);
  });

  it("odd spellings of admin paths and forged Clerk headers never skip auth", async () => {
    const forged = await token({}, { key: signer.strangerKey });
    const forgedHeaders = {
      "x-clerk-auth-status": "signed-in",
      "x-clerk-auth-token": forged,
      "x-clerk-auth-signature": createHash("sha256").update(forged).digest("hex"),
      "x-clerk-auth-reason": "session-token-and-uat-present",
    };
    const paths = [
      "//api/admin/backup",
      "/api/admin/backup/",
      "/api/%61dmin/backup",
      "/api/admin/%62ackup",
      "/api/admin/./backup",
      "/api/admin/backup;x",
      "/api/x/../admin/backup",
      "/api/admin/backup/database-2020-01-01-02-00-00",
      "/api/admin/backup/database-2020-01-01-02-00-00?download=1",
    ];
    for (const p of paths) {
      for (const headers of [{}, forgedHeaders]) {
        for (const method of ["GET", "POST"]) {
          const res = await main.request(p, { method, headers });
          expect(res.status, `${method} ${p} ${JSON.stringify(Object.keys(headers))}: ${res.text.slice(0, 200)}`).not.toBe(200);
          expect(res.text).not.toContain('"success":true');
          expect(res.text).not.toContain('"backups"');
        }
      }
    }
    expect(activity(main, "database_backup_created")).toEqual([]);
  });

  it("`//` + RSC: 1 (past the middleware) still gets the CSRF and token-shape checks, in the route frame", async () => {
    const admin = await token();
    // With this build `//…` + RSC: 1 ends in Next's 404; where a build routes it to the handler
    // without the middleware (issue 12), the frame's refusal is what answers. Either way: no 2xx.
    const viaFrame = async (p: string, res: RawResponse, status: number, code: string) => {
      if (p.startsWith("//") && res.status === 404) return;
      expectError(res, status, code);
    };
    const spellings: [string, Record<string, string>][] = [
      ["//api/admin/backup", { rsc: "1" }],
      ["/api/admin/backup", {}],
    ];
    for (const [p, rsc] of spellings) {
      {
        // A cookie-authenticated POST from another site: refused as cross-site.
        const csrf = await main.request(p, {
          method: "POST",
          headers: { ...rsc, cookie: `__session=${admin}`, "sec-fetch-site": "cross-site", origin: "https://evil.example" },
        });
        await viaFrame(p, csrf, 403, "FORBIDDEN");
        if (csrf.status === 403) expect(csrf.json().error.message).toMatch(/cross-site/);
        // No Sec-Fetch-Site, a foreign Origin: the same.
        await viaFrame(p, await main.request(p, { method: "DELETE", headers: { ...rsc, cookie: `__session=${admin}`, origin: "https://evil.example" } }), 403, "FORBIDDEN");
        // Machine-token and non-JWT bearer shapes never reach Clerk.
        for (const t of ["ak_live_123", "mt_abc.def.ghi", "oat_x", "not-a-jwt", `${admin} extra`]) {
          await viaFrame(p, await main.request(p, { method: "GET", headers: { ...rsc, authorization: `Bearer ${t}` } }), 401, "UNAUTHORIZED");
        }
      }
    }
    expect(activity(main, "database_backup_created")).toEqual([]);
  });

  it("admin answers are never cached or framed: no-store, Vary, frame-ancestors 'none', X-Frame-Options DENY", async () => {
    const admin = await token();
    const answers = [
      await main.request("/api/admin/backup", { headers: bearer(admin) }),
      await main.request("/api/admin/backup"),
      await main.request("/api/admin/backup/status", { headers: bearer(admin) }),
      await main.request("/api/admin/backup/database-2020-01-08-02-00-00?download=1", { headers: bearer(admin) }),
      await main.request("/api/admin/backup", { headers: { authorization: "Bearer nope" } }),
      await main.request("/admin", { headers: bearer(await token({ metadata: { role: "member" } })) }),
      await main.request("/admin"),
    ];
    const page = await main.request("/admin/backups", { headers: bearer(admin) });
    for (const res of [...answers, page]) {
      const what = `${res.status} ${res.text.slice(0, 120)}`;
      expect(res.headers["cache-control"], what).toMatch(/no-store/);
      expect(res.headers["content-security-policy"], what).toMatch(/frame-ancestors 'none'/);
      expect(res.headers["x-frame-options"], what).toBe("DENY");
    }
    // A rendered page gets Next's own Vary (RSC, Next-Router-…) in place of ours; no-store already
    // keeps every cache from storing it. Every API and middleware answer carries ours.
    expect(page.status).toBe(200);
    for (const res of answers) {
      expect(String(res.headers.vary), `${res.status}`).toMatch(/Cookie/i);
      expect(String(res.headers.vary), `${res.status}`).toMatch(/Authorization/i);
    }
  });

  it("deployed (a non-loopback host) without CLERK_AUTHORIZED_PARTIES fails closed with a CONFIG_ERROR naming it", async () => {
    const t = await token();
    for (const p of ["/api/admin/backup", "/api/admin/backup/status"]) {
      const res = await noCron.request(p, { headers: { ...bearer(t), host: "portal.example.com" } });
      expect(res.status, res.text.slice(0, 200)).toBe(500);
      expect(res.text).not.toContain('"success":true');
    }
    // The server writes its log after answering: wait for the line.
    await expect.poll(() => noCron.log(), { timeout: 15_000 }).toMatch(/CONFIG_ERROR: Clerk misconfigured: CLERK_AUTHORIZED_PARTIES is not set; it is required when deployed/);
    // The same server on its loopback address (local development) still serves the admin.
    expect((await noCron.request("/api/admin/backup", { headers: bearer(t) })).status).toBe(200);
  });

  it("missing CLERK_JWT_KEY fails closed: 500, nothing runs", async () => {
    const t = await token();
    for (const method of ["GET", "POST"]) {
      const res = await broken.request("/api/admin/backup", { method, headers: bearer(t) });
      expect(res.status).toBe(500);
      expect(res.text).not.toContain('"success":true');
    }
    // The server writes its log after answering: wait for the line.
    await expect.poll(() => broken.log(), { timeout: 15_000 }).toMatch(/CONFIG_ERROR: Clerk misconfigured: CLERK_JWT_KEY is not set/);
    expect(activity(broken, "database_backup_created")).toEqual([]);
  });
});

describe("admin backup API", () => {
  let created: string;

  it("GET lists the seeded old backups, newest first, and nothing that is not a backup", async () => {
    const res = await main.request("/api/admin/backup", { headers: bearer(await token()) });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body.total).toBe(OLD_BACKUPS);
    expect(body.backups.map((b: { key: string }) => b.key)).toEqual(
      Array.from({ length: OLD_BACKUPS }, (_, i) => `backups/database-2020-01-0${OLD_BACKUPS - i}-02-00-00.sql.gz`),
    );
    expect(res.text).not.toContain(CLIENT_DOC);
    expect(res.text).not.toContain("notes.txt");
    expect(body.incomplete.map((e: { name: string }) => e.name)).toEqual(["database-2020-02-01-02-00-00"]);
  });

  it("POST creates a backup (actor = Clerk user id) that is listed, stored in R2 and in activity_log", async () => {
    await nextSecond();
    const res = await main.request("/api/admin/backup", { method: "POST", headers: bearer(await token({ sub: "user_admin_42" })) });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body.success).toBe(true);
    expect(body.backup.key).toMatch(BACKUP_KEY_RE);
    expect(body.backup.manifest).toBe(body.backup.key.replace(/\.sql\.gz$/, ".manifest.json"));
    expect(body.backup.rows).toBeGreaterThan(3000);
    expect(body.backup.sha256).toMatch(/^[0-9a-f]{64}$/);
    created = body.backup.key;

    const list = (await main.request("/api/admin/backup", { headers: bearer(await token()) })).json();
    expect(list.backups[0].key).toBe(created);
    expect(list.backups[0].manifest.sha256).toBe(body.backup.sha256);

    const logged = activity(main, "database_backup_created");
    expect(logged).toHaveLength(1);
    expect(logged[0].user_id).toBe("user_admin_42");
    expect(logged[0].entity_id).toBe(created);

    // In R2 itself (the bucket's files, read by a second local runtime on the same state).
    const platform = await openLocalPlatform({ persistTo: main.persistTo });
    try {
      const obj = await platform.env.DOCUMENTS.head(created);
      expect(obj?.size).toBe(body.backup.size);
      expect(obj?.customMetadata?.sha256).toBe(body.backup.sha256);
    } finally {
      await platform.dispose();
    }
  });

  it("GET /backup/<name> returns the manifest; any accepted spelling of the name works", async () => {
    const name = created.replace(/^backups\//, "").replace(/\.sql\.gz$/, "");
    for (const spelling of [name, `${name}.sql.gz`, `${name}.manifest.json`]) {
      const res = await main.request(`/api/admin/backup/${spelling}`, { headers: bearer(await token()) });
      expect(res.status, res.text).toBe(200);
      const manifest = res.json();
      expect(manifest.name).toBe(name);
      expect(manifest.object.key).toBe(created);
    }
  });

  it("?download=1 streams the gzip dump with content-type, content-disposition and its size", async () => {
    const name = created.replace(/^backups\//, "").replace(/\.sql\.gz$/, "");
    const t = await token();
    const manifest = (await main.request(`/api/admin/backup/${name}`, { headers: bearer(t) })).json();
    const res = await main.request(`/api/admin/backup/${name}?download=1`, { headers: bearer(t) });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/gzip");
    expect(res.headers["content-disposition"]).toBe(`attachment; filename="${name}.sql.gz"`);
    // Content-Length is set by the route but dropped on the way out (Next.js re-streams edge route
    // bodies, workerd then sends chunked): when it arrives it must be right; the size always does.
    if (res.headers["content-length"] !== undefined) expect(res.headers["content-length"]).toBe(String(manifest.object.size));
    expect(res.headers["x-backup-size"]).toBe(String(manifest.object.size));
    expect(res.headers["x-backup-sha256"]).toBe(manifest.object.sha256);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.body.length).toBe(manifest.object.size);
    expect(createHash("sha256").update(res.body).digest("hex")).toBe(manifest.object.sha256);
    const sql = gunzipSync(res.body).toString("utf8");
    expect(sql.trimEnd().endsWith(DUMP_END_MARKER)).toBe(true);
    expect(sql).toContain('INSERT INTO "clients"');
  });

  it("names that are not backups are refused before any R2 read (400), absent backups are 404", async () => {
    const t = await token();
    const refused = [
      encodeURIComponent(CLIENT_DOC), // clients%2Facme%2Fcontract.pdf
      "clients%2Facme%2Fcontract.pdf",
      "..%2F..%2Fclients%2Facme%2Fcontract.pdf",
      "..%2Fclients%2Facme%2Fcontract.pdf",
      "%2e%2e%2f%2e%2e%2fclients%2facme%2fcontract.pdf",
      "backups%2Fdatabase-2020-01-01-02-00-00.sql.gz", // right key, but with an encoded slash
      "backups%252Fdatabase-2020-01-01-02-00-00.sql.gz", // double-encoded
      "notes.txt",
      "backups%2Fnotes.txt",
      "contract.pdf",
      "database-2020-01-01-02-00-00.txt",
      "database-2020-01-01-02-00-00.sql.gz.exe",
      "database-2020-01-01-02-00-00%00",
      "database-2020-01-01-02-00-00%20",
      "%20database-2020-01-01-02-00-00",
      "xdatabase-2020-01-01-02-00-00",
      "database-2020-02-31-02-00-00", // not a real date
      "database-2020-1-1-2-0-0",
      "..",
      "%2e%2e",
      ".staging",
    ];
    for (const seg of refused) {
      for (const q of ["", "?download=1"]) {
        const res = await main.request(`/api/admin/backup/${seg}${q}`, { headers: bearer(t) });
        expect(res.text).not.toContain(CLIENT_DOC_BODY);
        // INVALID_INPUT is only ever produced before the bucket is touched.
        if (res.status === 400) {
          expectError(res, 400, "INVALID_INPUT");
        } else {
          // Next.js normalises some of these away from the route entirely (e.g. "..").
          expect([404, 308], `${seg}${q}: ${res.status} ${res.text.slice(0, 200)}`).toContain(res.status);
          expect(res.text).not.toContain('"success":true');
        }
      }
    }
    // Raw dot segments, sent as-is (no client-side normalisation).
    for (const p of ["/api/admin/backup/../../clients/acme/contract.pdf", "/api/admin/backup/../../../backups/notes.txt?download=1"]) {
      const res = await main.request(p, { headers: bearer(t) });
      expect(res.status).not.toBe(200);
      expect(res.text).not.toContain(CLIENT_DOC_BODY);
    }
    // A well-formed name with no backup behind it: looked up, not found.
    expectError(await main.request("/api/admin/backup/database-2099-01-01-00-00-00?download=1", { headers: bearer(t) }), 404, "NOT_FOUND");
    // Bad query parameters are refused too.
    expectError(await main.request("/api/admin/backup/database-2020-01-01-02-00-00?download=yes", { headers: bearer(t) }), 400, "INVALID_INPUT");
    expectError(await main.request("/api/admin/backup/database-2020-01-01-02-00-00?file=x", { headers: bearer(t) }), 400, "INVALID_INPUT");

    // The client documents are untouched.
    await expectClientDocumentsUntouched();
  });

  it("concurrent POSTs: one backup at a time, and a POST that meets a running one gets 409 naming it", async () => {
    // On noCron's own state, so the backups this makes do not shift main's retention counts below.
    // When the three requests reach the lock is not the test's to choose: on a loaded machine one
    // request has been seen to finish its backup before workerd read the next (CI, 2026-12-03).
    // What must hold either way: each answer is a backup or a 409; every BACKUP_IN_PROGRESS names
    // the start of a run of this burst (one that made a backup, or one that took the lock and then
    // found the same one-second name taken); the list grows by exactly the 200s. That two
    // callers racing for the lock get exactly one winner is proven in lock.test.ts, where the
    // calls do overlap.
    const t = await token({ sub: "user_admin_race" });
    await nextSecond();
    const before = (await noCron.request("/api/admin/backup", { headers: bearer(t) })).json().total;
    const sent = Date.now();
    const results = await Promise.all([1, 2, 3].map(() => noCron.request("/api/admin/backup", { method: "POST", headers: bearer(t) })));
    const answered = Date.now();
    const summary = results.map((r) => `${r.status} ${r.text.slice(0, 160)}`).join("\n");
    const made = results.filter((r) => r.status === 200).map((r) => r.json().backup as { key: string; timestamp: string });
    expect(made.length, summary).toBeGreaterThanOrEqual(1);
    expect(new Set(made.map((b) => b.key)).size, summary).toBe(made.length);
    const refused = results.filter((r) => r.status !== 200).map((r) => {
      expect(r.status, summary).toBe(409);
      return r.json().error as { code: string; details?: { startedAt?: string } };
    });
    // Refused while another request held the lock (BACKUP_IN_PROGRESS, naming its start), or, for
    // a request that reached the lock only after the winner released it, BACKUP_EXISTS under the
    // same one-second name.
    for (const e of refused) {
      expect(["BACKUP_IN_PROGRESS", "BACKUP_EXISTS"], summary).toContain(e.code);
      if (e.code !== "BACKUP_IN_PROGRESS") continue;
      const startedAt = Date.parse(e.details?.startedAt ?? "");
      expect(startedAt, summary).toBeGreaterThanOrEqual(sent);
      expect(startedAt, summary).toBeLessThanOrEqual(answered);
    }
    expect((await noCron.request("/api/admin/backup", { headers: bearer(t) })).json().total).toBe(before + made.length);
    // Neither refusal is a failed run: the health's last run is a good backup.
    const status = (await noCron.request("/api/admin/backup/status", { headers: bearer(t) })).json();
    expect(status.health.lastRun).toMatchObject({ action: "database_backup_created", ok: true });
    expect(status.health.status).not.toBe("failing");
    expect(activity(noCron, "database_backup_failed")).toEqual([]);
  });

  it("a run holding the lock: POST gets 409 BACKUP_IN_PROGRESS with the holder's startedAt", async () => {
    const t = await token({ sub: "user_admin_lock" });
    const startedAt = new Date(Date.now() - 60_000).toISOString();
    const expiresAt = new Date(Date.now() + 10 * 60_000).toISOString();
    // Another run (say the nightly one) holds the lock in the same D1 the server uses.
    sqlite(d1File(main.persistTo), `INSERT INTO backup_lock (name, owner, started_at, expires_at) VALUES ('backup', 'scheduled:test', '${startedAt}', '${expiresAt}');`);
    try {
      const res = await main.request("/api/admin/backup", { method: "POST", headers: bearer(t) });
      expect(res.status, res.text).toBe(409);
      expect(res.json().error).toMatchObject({ code: "BACKUP_IN_PROGRESS", details: { startedAt } });
    } finally {
      sqlite(d1File(main.persistTo), "DELETE FROM backup_lock WHERE owner = 'scheduled:test';");
    }
  });

  it("DELETE ?dry_run=1 previews retention and deletes nothing", async () => {
    const t = await token();
    const res = await main.request("/api/admin/backup?dry_run=1", { method: "DELETE", headers: bearer(t) });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ success: true, dry_run: true });
    // 8 old + the one POSTed above; the newest 7 are kept, the 2 oldest (2020) are outside every tier.
    expect(body.deleted).toEqual([1, 2].map((d) => `backups/database-2020-01-0${d}-02-00-00.sql.gz`));
    expect(body.deleted_count).toBe(2);
    expect(body.kept).toHaveLength(7);
    // Why: one decision per backup, newest first; the one made today is today's daily, weekly and monthly.
    expect(body.policy).toEqual({ daily: 30, weekly: 12, monthly: 24, newest: 7 });
    expect(body.decisions.map((d: { key: string }) => d.key)).toEqual([...body.kept, ...[...body.deleted].reverse()]);
    const [newest, second, ...rest] = body.decisions;
    expect(newest.reasons).toEqual(["newest 7", expect.stringMatching(/^daily \d{4}-\d{2}-\d{2}$/), expect.stringMatching(/^weekly \d{4}-W\d{2}$/), expect.stringMatching(/^monthly \d{4}-\d{2}$/)]);
    expect(second).toMatchObject({ action: "keep", reasons: ["newest 7"] });
    expect(rest.map((d: { action: string; reasons: string[] }) => [d.action, d.reasons.join()])).toEqual([
      ...Array(5).fill(["keep", "newest 7"]),
      ...Array(2).fill(["delete", ""]),
    ]);
    // The 2020 leftover was written just now (R2 upload time): too fresh to count as abandoned.
    expect(body.incomplete_deleted).toEqual([]);
    expect(body.needs_attention).toEqual([]);
    const list = (await main.request("/api/admin/backup", { headers: bearer(t) })).json();
    expect(list.total).toBe(9);
    expect(activity(main, "backup_cleanup_completed")).toEqual([]);
  });

  it("DELETE with a misspelt or ambiguous flag is refused (400) rather than run for real", async () => {
    const t = await token();
    for (const q of ["?dryrun=1", "?dry_run=yes", "?dry_run=1&dry_run=0", "?dry_run=1&force=1"]) {
      expectError(await main.request(`/api/admin/backup${q}`, { method: "DELETE", headers: bearer(t) }), 400, "INVALID_INPUT");
    }
    expect((await main.request("/api/admin/backup", { headers: bearer(t) })).json().total).toBe(9);
  });

  it("DELETE applies retention: old backups go, fresh leftovers and client documents stay", async () => {
    const res = await main.request("/api/admin/backup", { method: "DELETE", headers: bearer(await token({ sub: "user_admin_7" })) });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(
      ["decisions", "deleted", "deleted_count", "dry_run", "incomplete_deleted", "kept", "needs_attention", "policy", "reference", "success"].sort(),
    );
    expect(body).toMatchObject({ success: true, dry_run: false, deleted_count: 2 });
    expect(body.incomplete_deleted).toEqual([]);
    const list = (await main.request("/api/admin/backup", { headers: bearer(await token()) })).json();
    expect(list.total).toBe(7);
    expect(list.incomplete.map((e: { name: string }) => e.name)).toEqual(["database-2020-02-01-02-00-00"]);
    const logged = activity(main, "backup_cleanup_completed");
    expect(logged).toHaveLength(1);
    expect(logged[0].user_id).toBe("user_admin_7");

    await expectClientDocumentsUntouched();
  });

  it("a malformed BACKUP_RETENTION: a cleanup is a CONFIG_ERROR naming it, and deletes nothing", async () => {
    const t = await token();
    for (const q of ["?dry_run=1", ""]) {
      const err = expectError(await noCron.request(`/api/admin/backup${q}`, { method: "DELETE", headers: bearer(t) }), 500, "CONFIG_ERROR");
      expect(err.message).toMatch(/^BACKUP_RETENTION has an unknown key "yearly"/);
    }
    expect(activity(noCron, "backup_cleanup_completed")).toEqual([]);
  });

  it("unknown query parameters on POST/GET are refused", async () => {
    const t = await token();
    expectError(await main.request("/api/admin/backup?now=2020-01-01", { method: "POST", headers: bearer(t) }), 400, "INVALID_INPUT");
    expectError(await main.request("/api/admin/backup?limit=1", { headers: bearer(t) }), 400, "INVALID_INPUT");
  });
});

describe("cron route (Bearer CRON_SECRET, constant-time check, fails closed)", () => {
  it("wrong, missing or malformed secret: 401, nothing runs", async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-secret" },
      { authorization: `Bearer ${CRON_SECRET}x` },
      { authorization: `Bearer ${CRON_SECRET.slice(0, -1)}` },
      { authorization: `bearer ${CRON_SECRET}` },
      { authorization: `Basic ${Buffer.from(`cron:${CRON_SECRET}`).toString("base64")}` },
      { authorization: CRON_SECRET },
      { authorization: "Bearer " },
    ];
    for (const headers of cases) expectError(await main.request("/api/cron/backup", { headers }), 401, "UNAUTHORIZED");
    expect(activity(main, "scheduled_backup_completed")).toEqual([]);
  });

  it("right secret: backup + retention, reported as {success, backup, cleanup}", async () => {
    await nextSecond();
    const res = await main.request("/api/cron/backup", { headers: bearer(CRON_SECRET) });
    expect(res.status, res.text).toBe(200);
    const body = res.json();
    expect(body.success).toBe(true);
    expect(body.backup.key).toMatch(BACKUP_KEY_RE);
    expect(body.cleanup).toMatchObject({ dry_run: false });
    expect(body.cleanup.deleted_count).toBe(body.cleanup.deleted.length);
    // 7 complete before this run, 8 with it: the newest 7 are kept, the oldest remaining 2020 one goes.
    expect(body.cleanup.deleted).toEqual(["backups/database-2020-01-03-02-00-00.sql.gz"]);
    expect(Array.isArray(body.cleanup.incomplete_deleted)).toBe(true);
    const logged = activity(main, "scheduled_backup_completed");
    expect(logged).toHaveLength(1);
    expect(logged[0].entity_id).toBe(body.backup.key);
  });

  it("CRON_SECRET unset: every call gets the plain 401 (nothing about the config); the log names it", async () => {
    for (const headers of [{}, bearer(""), bearer(CRON_SECRET), bearer("undefined")]) {
      const res = await noCron.request("/api/cron/backup", { headers });
      const error = expectError(res, 401, "UNAUTHORIZED");
      expect(error.message).toBe("missing or wrong cron secret");
      expect(res.text).not.toMatch(/CRON_SECRET|CONFIG|misconfigured/);
    }
    // The server writes its log after answering: wait for the line.
    await expect.poll(() => noCron.log(), { timeout: 15_000 }).toMatch(/cron route refused a call: cron misconfigured: CRON_SECRET is not set/);
    expect(activity(noCron, "scheduled_backup_completed")).toEqual([]);
  });

  it("CRON_SECRET shorter than 32 characters counts as unset, even when presented correctly", async () => {
    const res = await broken.request("/api/cron/backup", { headers: bearer("short") });
    expectError(res, 401, "UNAUTHORIZED");
    expect(res.text).not.toMatch(/CRON_SECRET|shorter/);
    // The server writes its log after answering: wait for the line.
    await expect.poll(() => broken.log(), { timeout: 15_000 }).toMatch(/CRON_SECRET is shorter than 32/);
    expect(activity(broken, "scheduled_backup_completed")).toEqual([]);
  });
});
