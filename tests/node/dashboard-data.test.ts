// The admin dashboard's data (lib/monitor/dashboard.ts) against real local D1/R2: the backup
// activity feed, paged, and the size-over-time series from real backups. The page itself is
// tests/node/dashboard.test.ts (a browser against the built app).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_ACTIONS, backupDatabase, BackupError, listBackups, listResponse } from "../../lib/backup";
import { backupSizeSeries, getDashboard, recentBackupActivity } from "../../lib/monitor";
import { testKeys } from "../helpers/signing";
import { freshPlatform } from "../helpers/local";

describe("dashboard data against real local D1 and R2", () => {
  let platform: Awaited<ReturnType<typeof freshPlatform>>;
  let db: D1Database;
  let bucket: R2Bucket;

  beforeAll(async () => {
    platform = await freshPlatform();
    db = platform.env.DB;
    bucket = platform.env.DOCUMENTS;
  });
  afterAll(async () => {
    await platform?.dispose();
  });

  describe("recentBackupActivity", () => {
    let ids: number[];

    beforeAll(async () => {
      await db.exec("DELETE FROM activity_log");
      const stmts: D1PreparedStatement[] = [];
      for (let i = 0; i < 23; i++) {
        const action = BACKUP_ACTIONS[i % BACKUP_ACTIONS.length];
        const details = i === 4 ? "{not json" : i === 7 ? null : JSON.stringify({ i });
        stmts.push(db.prepare("INSERT INTO activity_log (user_id, action, entity_type, entity_id, details) VALUES (?, ?, 'backup', ?, ?)").bind(i % 2 ? "user_a" : null, action, `e${i}`, details));
        if (i % 8 === 0) {
          // The portal's own activity shares the table and must not show up.
          stmts.push(db.prepare("INSERT INTO activity_log (user_id, action, entity_type, details) VALUES ('user_b', 'ticket_created', 'ticket', '{}')"));
        }
      }
      await db.batch(stmts);
      ids = (await db.prepare("SELECT id FROM activity_log WHERE entity_type = 'backup' ORDER BY id DESC").all<{ id: number }>()).results.map((r) => r.id);
      expect(ids).toHaveLength(23);
    });

    it("pages through backup activity newest first, with the total", async () => {
      const seen: number[] = [];
      for (let offset = 0; offset < 30; offset += 10) {
        const page = await recentBackupActivity(db, { limit: 10, offset });
        expect(page).toMatchObject({ total: 23, limit: 10, offset });
        seen.push(...page.entries.map((e) => e.id));
        expect(page.entries.length).toBe(Math.min(10, Math.max(0, 23 - offset)));
      }
      expect(seen).toEqual(ids);
      const beyond = await recentBackupActivity(db, { limit: 10, offset: 100 });
      expect(beyond).toEqual({ entries: [], total: 23, limit: 10, offset: 100 });
    });

    it("parses details (bad JSON stays the raw string, NULL stays null) and maps the columns", async () => {
      const { entries } = await recentBackupActivity(db, { limit: 100 });
      const byEntity = new Map(entries.map((e) => [e.entityId, e]));
      expect(byEntity.get("e4")!.details).toBe("{not json");
      expect(byEntity.get("e7")!.details).toBeNull();
      expect(byEntity.get("e3")).toMatchObject({ action: BACKUP_ACTIONS[3], userId: "user_a", entityType: "backup", details: { i: 3 } });
      expect(byEntity.get("e3")!.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(entries.some((e) => (e.action as string) === "ticket_created")).toBe(false);
      expect(new Set(entries.map((e) => e.action))).toEqual(new Set(BACKUP_ACTIONS)); // alerts included
    });

    it("defaults to 20 from 0, accepts query-string digits, refuses anything else with INVALID_INPUT", async () => {
      expect((await recentBackupActivity(db)).entries.map((e) => e.id)).toEqual(ids.slice(0, 20));
      expect((await recentBackupActivity(db, { limit: "5", offset: "3" })).entries.map((e) => e.id)).toEqual(ids.slice(3, 8));
      for (const bad of [{ limit: 0 }, { limit: 101 }, { limit: 1.5 }, { limit: "ten" }, { offset: -1 }, { offset: "1e3" }]) {
        const err = await recentBackupActivity(db, bad).catch((e) => e);
        expect(err, JSON.stringify(bad)).toBeInstanceOf(BackupError);
        expect(err.code).toBe("INVALID_INPUT");
      }
    });
  });

  describe("backupSizeSeries", () => {
    it("one point per complete backup in the last 30 days, oldest first, from real backups", async () => {
      const at = ["2024-12-20T02:00:00Z", "2025-01-02T00:00:00Z", "2025-01-15T02:00:00Z", "2025-01-15T14:00:00Z", "2025-01-31T02:00:00Z"];
      const made = new Map<string, { key: string; size: number }>();
      for (const iso of at) {
        const { summary } = await backupDatabase({ db, bucket, now: new Date(iso), trigger: "cli" });
        made.set(iso, { key: summary.key, size: summary.size });
      }
      const listing = await listBackups(bucket);
      const now = new Date("2025-02-01T00:00:00Z");
      const point = (iso: string) => ({ date: iso.slice(0, 10), ...made.get(iso)! });
      expect(backupSizeSeries(listing, now)).toEqual(at.slice(1).map(point)); // 30 days back is inclusive
      expect(backupSizeSeries(listing, now, 7)).toEqual([point("2025-01-31T02:00:00Z")]);
      expect(backupSizeSeries({ backups: [], incomplete: [] }, now)).toEqual([]);
      expect(() => backupSizeSeries(listing, now, 0)).toThrow("days must be a positive integer");
    });
  });

  describe("signature state per backup", () => {
    it("the dashboard and the list JSON say who signed each backup, or that it is unsigned", async () => {
      const keys = await testKeys();
      const signed = await backupDatabase({ db, bucket, now: new Date("2025-03-01T02:00:00Z"), trigger: "cli", signingKey: keys.signingKey });
      const unsigned = await backupDatabase({ db, bucket, now: new Date("2025-03-02T02:00:00Z"), trigger: "cli" });
      expect(signed.summary.signature).toEqual({ alg: "Ed25519", keyId: keys.text.keyId });
      expect(unsigned.summary.signature).toBeNull();
      expect(unsigned.summary.warnings).toContain("unsigned backup: BACKUP_SIGNING_KEY is not set, so a restore needs --allow-unsigned (BACKUP_SETUP.md)");
      const dash = await getDashboard({ db, bucket, now: new Date("2025-03-03T00:00:00Z") });
      const by = (key: string) => dash.backups.find((b) => b.key === key)?.signedBy;
      expect(by(signed.summary.key)).toBe(keys.text.keyId);
      expect(by(unsigned.summary.key)).toBeNull();
      const list = listResponse(await listBackups(bucket)).backups;
      expect(list.find((b) => b.key === signed.summary.key)?.manifest.signature).toEqual({ alg: "Ed25519", key_id: keys.text.keyId });
      expect(list.find((b) => b.key === unsigned.summary.key)?.manifest.signature).toBeNull();
    });
  });
});
