// A put-back is right or says so: deleted rows come back exactly as they were (triggers on the
// written tables never re-fire), --cascade brings back what referenced them and sets SET NULL links
// back, per-table --where selects a client's rows across tables, --mode replace overwrites changed
// values without deleting children, and after --apply every written cell is compared with the
// backup: a difference fails naming table, key and column. One platform and one signed backup for
// the file; every test works on its own copy of the seeded local D1 (applied by real wrangler) or
// of its SQLite file (applied by real sqlite3).
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { backupDatabase } from "../../lib/backup";
import { keysFor } from "../../lib/backup/keys";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { parseRestoreArgs } from "../../scripts/restore";
import { formatResult, runRestore, silentReporter, type RestoreOptions, type RestoreResult, type TargetSpec } from "../../lib/restore";
import { seedDemoData } from "../../lib/seed/seed";
import { canonicalDump, CLI_ENV, d1File, freshPlatform, rejection, sqlite, sqliteJson, tempDir } from "../helpers/local";
import { testKeys, type TestKeys } from "../helpers/signing";

let keys: TestKeys;
let base: string; // the seeded local D1 state, as it was when the backup was taken
let before: string; // canonicalDump of it
let backupFile: string;
let manifestFile: string;
let work: string;
/** The ticket the tests delete: comments and time entries (CASCADE), documents and appointments (SET NULL). */
let ticket: number;
/** The client the tests delete: invoices with payments (trigger), users (SET NULL), tickets, projects. */
let client: string;

beforeAll(async () => {
  keys = await testKeys();
  const platform = await freshPlatform();
  base = platform.persistTo;
  work = tempDir("put-back-work");
  try {
    const db = platform.env.DB;
    await seedDemoData(db, { rows: 200 });
    ticket = (await db.prepare("SELECT ticket_id AS id FROM ticket_comments GROUP BY ticket_id ORDER BY count(*) DESC, ticket_id LIMIT 1").first<{ id: number }>())!.id;
    // Make sure the ticket is referenced every way the schema allows.
    await db.batch([
      db.prepare("UPDATE documents SET ticket_id = ? WHERE id IN (SELECT id FROM documents ORDER BY id LIMIT 2)").bind(ticket),
      db.prepare("UPDATE appointments SET ticket_id = ? WHERE id IN (SELECT id FROM appointments ORDER BY id LIMIT 1)").bind(ticket),
      db.prepare("INSERT INTO time_entries (ticket_id, user_id, minutes, billable, description, work_date) SELECT ?, id, 45, 1, 'on site', '2026-01-10' FROM users ORDER BY id LIMIT 2").bind(ticket),
    ]);
    client = (
      await db
        .prepare("SELECT i.client_id AS id FROM invoices i JOIN payments p ON p.invoice_id = i.id GROUP BY i.client_id ORDER BY count(*) DESC, i.client_id LIMIT 1")
        .first<{ id: string }>()
    )!.id;
    // More payments (the trigger moves their invoices as in production), so ten invoices have one.
    await db
      .prepare("INSERT INTO payments (invoice_id, amount, method, reference, paid_at) SELECT id, max(1, round(total / 3, 2)), 'card', 'extra-' || id, '2026-01-12T10:00:00.000Z' FROM invoices ORDER BY id LIMIT 10")
      .run();
    await db.prepare("UPDATE users SET client_id = ? WHERE id IN (SELECT id FROM users WHERE role = 'client' ORDER BY id LIMIT 1)").bind(client).run();
    const made = await backupDatabase({ db, bucket: platform.env.DOCUMENTS, now: new Date(Date.UTC(2026, 0, 15, 2, 0, 0)), trigger: "cli", signingKey: keys.signingKey });
    const k = keysFor(made.manifest.name);
    backupFile = path.join(work, `${made.manifest.name}.sql.gz`);
    manifestFile = path.join(work, `${made.manifest.name}.manifest.json`);
    fs.writeFileSync(backupFile, new Uint8Array(await (await platform.env.DOCUMENTS.get(k.object))!.arrayBuffer()));
    fs.writeFileSync(manifestFile, await (await platform.env.DOCUMENTS.get(k.manifest))!.text());
  } finally {
    await platform.dispose();
  }
  before = canonicalDump(d1File(base));
});

/**
 * A copy of the seeded local D1 state directory (what `wrangler --persist-to` uses). `exec` changes
 * it as the app would: sqlite3 on its file with foreign keys on, as D1 has them (no workerd runs
 * now, and it is seconds faster than a wrangler call; the put-back itself goes through wrangler).
 */
function d1Copy(label: string): { spec: TargetSpec; file: string; exec: (sql: string) => void } {
  const dir = path.join(tempDir(label), "state");
  fs.cpSync(base, dir, { recursive: true });
  const file = d1File(dir);
  return {
    spec: { kind: "d1", database: "tech-support-db", remote: false, persistTo: dir },
    file,
    exec: (sql) => void sqlite(file, `PRAGMA foreign_keys=ON;\n${sql}`),
  };
}

/** A plain SQLite copy of the seeded database. */
function sqliteCopy(label: string): { spec: TargetSpec; file: string; exec: (sql: string) => void } {
  const file = path.join(tempDir(label), "live.db");
  sqlite(d1File(base), `.backup '${file}'`);
  return { spec: { kind: "sqlite", file }, file, exec: (sql) => void sqlite(file, `PRAGMA foreign_keys=ON;\n${sql}`) };
}

function putBack(target: TargetSpec, selective: NonNullable<RestoreOptions["selective"]>): Promise<RestoreResult> {
  return runRestore({
    source: { kind: "file", file: backupFile, manifestFile },
    target,
    selective: { apply: true, out: path.join(tempDir("out"), "put-back.sql"), ...selective },
    reporter: silentReporter(),
    tempRoot: work,
    verifyKeys: keys.verifyKeys,
  });
}

const count = (file: string, sql: string) => sqliteJson<{ n: number }>(file, `SELECT count(*) AS n FROM ${sql}`)[0].n;
const selected = (r: RestoreResult) => Object.fromEntries(r.putBack!.tables.map((t) => [t.name, t.rows]));

describe("put-back", () => {
  it("deleted payments come back without re-firing their trigger: every table (invoices too) equals the one before the delete", async () => {
    const invoices = sqliteJson<{ id: number }>(d1File(base), "SELECT DISTINCT invoice_id AS id FROM payments ORDER BY invoice_id LIMIT 10").map((r) => r.id);
    const where = `invoice_id IN (${invoices.join(", ")})`;
    const deleted = count(d1File(base), `payments WHERE ${where}`);
    expect(deleted).toBeGreaterThanOrEqual(10);

    // Local D1, applied by wrangler.
    const d1 = d1Copy("payments-d1");
    d1.exec(`DELETE FROM payments WHERE ${where}`);
    const r = await putBack(d1.spec, { tables: ["payments"], where });
    expect(r.ok).toBe(true);
    expect(r.putBack?.triggers.map((t) => t.name)).toEqual(["trg_payments_apply"]);
    expect(r.putBack?.comparison).toEqual([{ table: "payments", selected: deleted, missing: 0, different: 0, kept: 0, links: 0, linksKept: 0 }]);
    expect(formatResult(r)).toMatch(/RESULT: OK$/);
    expect(canonicalDump(d1.file, { withoutRestoreAudit: true })).toBe(before);

    // The file drops the trigger before the first write and re-creates it, exactly, after the last.
    const sql = fs.readFileSync(r.putBack!.out, "utf8");
    const original = sqliteJson<{ sql: string }>(d1File(base), "SELECT sql FROM sqlite_master WHERE name = 'trg_payments_apply'")[0].sql;
    expect(sql.indexOf('DROP TRIGGER "trg_payments_apply";')).toBeLessThan(sql.indexOf("INSERT OR IGNORE INTO"));
    expect(sql.indexOf(`${original};`)).toBeGreaterThan(sql.lastIndexOf("INSERT OR IGNORE INTO"));

    // A SQLite file, applied by sqlite3; and, as the control, the same file without the trigger
    // lines: the trigger fires and the invoices' amount_paid and status are wrong.
    const file = sqliteCopy("payments-sqlite");
    const control = sqliteCopy("payments-control");
    for (const c of [file, control]) c.exec(`DELETE FROM payments WHERE ${where}`);
    const s = await putBack(file.spec, { tables: ["payments"], where });
    expect(s.ok).toBe(true);
    expect(canonicalDump(file.file)).toBe(before);
    const stripped = path.join(tempDir("control"), "no-triggers.sql");
    const text = fs.readFileSync(s.putBack!.out, "utf8");
    fs.writeFileSync(stripped, text.replace('DROP TRIGGER "trg_payments_apply";\n', "").replace(`${original};\n`, ""));
    sqlite(control.file, `.read '${stripped}'`);
    const paid = (f: string) => sqliteJson<{ p: number }>(f, `SELECT sum(amount_paid) AS p FROM invoices WHERE id IN (${invoices.join(", ")})`)[0].p;
    expect(paid(control.file)).toBeGreaterThan(paid(file.file));
    expect(canonicalDump(control.file)).not.toBe(before);
  });

  it("a deleted ticket and --cascade: comments and time entries re-inserted, SET NULL links set back, every table equals the one before", async () => {
    const d1 = d1Copy("ticket");
    const children = { ticket_comments: count(d1.file, `ticket_comments WHERE ticket_id = ${ticket}`), time_entries: count(d1.file, `time_entries WHERE ticket_id = ${ticket}`) };
    const links = { documents: count(d1.file, `documents WHERE ticket_id = ${ticket}`), appointments: count(d1.file, `appointments WHERE ticket_id = ${ticket}`) };
    expect(children.ticket_comments).toBeGreaterThan(0);
    expect(links.documents).toBe(2);
    d1.exec(`DELETE FROM tickets WHERE id = ${ticket}`);
    expect(count(d1.file, `ticket_comments WHERE ticket_id = ${ticket}`)).toBe(0); // the cascade ran
    expect(count(d1.file, "documents WHERE ticket_id IS NULL")).toBeGreaterThanOrEqual(2);

    const r = await putBack(d1.spec, { tables: ["tickets"], where: `tickets:id = ${ticket}`, cascade: true });
    expect(r.ok).toBe(true);
    expect(selected(r)).toMatchObject({ tickets: 1, ...children });
    expect(Object.fromEntries(r.putBack!.links.map((l) => [`${l.table}.${l.columns.join()}`, l.rows]))).toMatchObject({ "documents.ticket_id": 2, "appointments.ticket_id": 1 });
    expect(r.putBack?.failures).toEqual([]);
    expect(r.putBack?.triggers.map((t) => t.name)).toEqual(["trg_tickets_updated_at"]); // tickets is written: its trigger is suspended
    expect(canonicalDump(d1.file, { withoutRestoreAudit: true })).toBe(before);
    const out = formatResult(r);
    expect(out).toMatch(/documents\.ticket_id: 2 links to tickets set back/);
    expect(out).toMatch(/RESULT: OK$/);
  });

  it("a client's data deleted across tables comes back with one --where per table", async () => {
    const c = sqliteCopy("client-where");
    const inv = `(SELECT id FROM invoices WHERE client_id = '${client}')`;
    const tix = `(SELECT id FROM tickets WHERE client_id = '${client}')`;
    const wheres = [`payments:invoice_id IN ${inv}`, `invoice_items:invoice_id IN ${inv}`, `ticket_comments:ticket_id IN ${tix}`, `appointments:client_id = '${client}'`];
    const expected = {
      payments: count(c.file, `payments WHERE invoice_id IN ${inv}`),
      invoice_items: count(c.file, `invoice_items WHERE invoice_id IN ${inv}`),
      ticket_comments: count(c.file, `ticket_comments WHERE ticket_id IN ${tix}`),
      appointments: count(c.file, `appointments WHERE client_id = '${client}'`),
    };
    expect(expected.payments).toBeGreaterThan(0);
    c.exec(wheres.map((w) => `DELETE FROM ${w.replace(":", " WHERE ")};`).join("\n"));
    const r = await putBack(c.spec, { tables: Object.keys(expected), where: wheres });
    expect(r.ok).toBe(true);
    expect(selected(r)).toEqual(expected);
    expect(canonicalDump(c.file)).toBe(before);
  });

  it("undelete a client: --cascade from the client brings back every table as it was", async () => {
    const d1 = sqliteCopy("client-cascade");
    // What an admin has to do to delete a client (invoices and payments are RESTRICT).
    d1.exec(
      `DELETE FROM payments WHERE invoice_id IN (SELECT id FROM invoices WHERE client_id = '${client}'); ` +
        `DELETE FROM invoices WHERE client_id = '${client}'; DELETE FROM clients WHERE id = '${client}'`,
    );
    expect(count(d1.file, `tickets WHERE client_id = '${client}'`)).toBe(0);
    const r = await putBack(d1.spec, { tables: ["clients"], where: `clients:id = '${client}'`, cascade: true });
    expect(r.ok).toBe(true);
    expect(selected(r)).toMatchObject({ clients: 1 });
    expect(selected(r).payments).toBeGreaterThan(0);
    expect(r.putBack!.links.map((l) => `${l.table}.${l.columns.join()}`)).toContain("users.client_id");
    expect(canonicalDump(d1.file)).toBe(before);
  });

  it("--mode ignore keeps and lists changed live values; --mode replace overwrites them in place, children untouched", async () => {
    const c = sqliteCopy("replace");
    const comment = sqliteJson<{ id: number }>(c.file, `SELECT min(id) AS id FROM ticket_comments WHERE ticket_id = ${ticket}`)[0].id;
    // category is not a column trg_tickets_updated_at watches, so updated_at stays as in the
    // backup: an UPDATE of subject by the put-back would fire it (NEW.updated_at = OLD.updated_at).
    c.exec(`UPDATE tickets SET category = 'edited live' WHERE id = ${ticket}; UPDATE ticket_comments SET body = 'edited live' WHERE id = ${comment};`);
    const edited = canonicalDump(c.file);
    const selective = { tables: ["tickets", "ticket_comments"], where: [`tickets:id = ${ticket}`, `ticket_comments:ticket_id = ${ticket}`] };

    const ignore = await putBack(c.spec, selective);
    expect(ignore.ok).toBe(true);
    expect(ignore.putBack?.kept.map((d) => `${d.table} ${d.key} ${d.column}`)).toEqual([`tickets ${ticket} category`, `ticket_comments ${comment} body`]);
    expect(formatResult(ignore)).toMatch(new RegExp(`kept live values[^\\n]*\\n\\s+tickets key ${ticket} column category: target text:[0-9A-F]+, backup text:`));
    expect(canonicalDump(c.file)).toBe(edited);

    const replace = await putBack(c.spec, { ...selective, mode: "replace" });
    expect(replace.ok).toBe(true);
    expect(replace.putBack?.kept).toEqual([]);
    const sql = fs.readFileSync(replace.putBack!.out, "utf8");
    expect(sql).toMatch(/\) ON CONFLICT \("id"\) DO UPDATE SET "client_id" = excluded\."client_id", .*"updated_at" = excluded\."updated_at";$/m);
    expect(sql).not.toMatch(/OR REPLACE|^DELETE/m);
    // Comments, time entries, document and appointment links of the ticket are all still there.
    expect(canonicalDump(c.file)).toBe(before);
  });

  describe("the CLI", () => {
    const run = promisify(execFile);
    const cli = (args: string[]) =>
      run(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [path.join(PROJECT_ROOT, "scripts", "restore.ts"), ...args], {
        cwd: work,
        env: { ...CLI_ENV, BACKUP_VERIFY_KEY: keys.text.verifyKey },
      }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );

    it("a cell that differs after --apply fails naming table, key and column; never RESULT: OK", async () => {
      // A target whose schema drifted from the backup's: minutes is REAL there, so the INTEGER
      // the backup had comes back as a real. The put-back cannot make it equal, and says so.
      const c = sqliteCopy("drift");
      const id = sqliteJson<{ id: number }>(c.file, `SELECT min(id) AS id FROM time_entries WHERE ticket_id = ${ticket}`)[0].id;
      sqlite(c.file, `PRAGMA writable_schema=ON; UPDATE sqlite_master SET sql = replace(sql, 'minutes INTEGER NOT NULL', 'minutes REAL NOT NULL') WHERE name = 'time_entries'; PRAGMA writable_schema=OFF;`);
      c.exec(`DELETE FROM time_entries WHERE id = ${id}`);
      const r = await cli(["--file", backupFile, "--manifest", manifestFile, "--to-sqlite", c.file, "--table", "time_entries", "--where", `id = ${id}`, "--apply", "--out", path.join(tempDir("drift-out"), "pb.sql")]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`✗ time_entries key ${id} column minutes: target real:\\d+\\.0, backup integer:[0-9A-F]+`));
      expect(r.stdout).toMatch(/RESULT: FAILED: 1 cell\(s\) or row\(s\) of the target differ from the backup/);
      expect(r.stdout).not.toMatch(/RESULT: OK/);
    });

    it("argument mistakes exit 2 with one line, before anything is downloaded", async () => {
      const never = path.join(work, "never.db");
      const r = await cli(["--file", backupFile, "--manifest", manifestFile, "--to-sqlite", never, "--table", "tickets", "--table", "ticket_comments", "--where", "id = 1"]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(/^restore: INVALID_INPUT: --where "id = 1" does not say its table and there are 2 --table: prefix it, e\.g\. --where "tickets:id = 1"$/);
      expect(fs.existsSync(never)).toBe(false);

      // The same checks in process (INVALID_INPUT is exit 2; the CLI maps it, as above).
      const args = (...a: string[]) => () => parseRestoreArgs(["x", "--to-sqlite", never, ...a]);
      expect(args("--table", "tickets", "--mode", "overwrite")).toThrow(/^--mode is ignore or replace \(got overwrite\)$/);
      expect(args("--table", "tickets", "--mode")).toThrow(/^--mode needs a value: --mode ignore\|replace$/);
      expect(args("--table", "tickets", "--cascade=yes")).toThrow(/^--cascade takes no value; see --help$/);
      const target: TargetSpec = { kind: "sqlite", file: never };
      const cases: [NonNullable<RestoreOptions["selective"]>, RegExp][] = [
        [{ tables: ["tickets"], where: "clients:id = 'x'" }, /^--where "clients:id = 'x'" is for table clients, which is not a --table \(add --table clients\)$/],
        [{ tables: ["tickets"], where: ["tickets:id = 1", "tickets:id = 2"] }, /^two --where for table tickets: combine them in one with AND \/ OR$/],
        [{ tables: ["tickets", "clients"], where: ["tickets:id = 1; DROP TABLE clients"] }, /^--where must be one SQL expression, without ";"/],
        [{ tables: ["tickets"], where: "tickets:" }, /^--where "tickets:" has no expression after the table$/],
        [{ tables: [], cascade: true }, /^--where, --cascade, --mode and --out need at least one --table$/],
      ];
      for (const [selective, message] of cases) {
        const e = await rejection(putBack(target, selective));
        expect(e.code).toBe("INVALID_INPUT");
        expect(e.message).toMatch(message);
      }
      // A --where that SQLite rejects on its table names the table (after the scratch copy).
      const e = await rejection(putBack(target, { tables: ["tickets", "clients"], where: ["clients:no_such = 1"], apply: false }));
      expect(e.message).toMatch(/^--where "no_such = 1" does not work on table "clients": .*no such column: no_such/);
      expect(fs.existsSync(never)).toBe(false);
    });
  });
});
