// Deterministic, portal-shaped demo data of any size. Each table is filled by INSERT … SELECT
// over a recursive counter inside SQLite, so a million rows take seconds and need no memory
// here; every "random" choice is arithmetic on the row number, so the same size always gives
// the same database (tests compare seeded databases cell for cell).

export interface SeedOptions {
  /** About how many rows in total, spread over the 13 portal tables (at least one each). */
  rows: number;
  /** Rows per INSERT statement: keeps each D1 query short. */
  chunkRows?: number;
  onProgress?: (table: string, done: number, total: number) => void;
}

export interface SeedResult {
  tables: Record<string, number>;
  total: number;
}

/** Share of the total per table, in insertion (foreign-key) order; activity_log takes the rest. */
const SHARES: [string, number][] = [
  ["clients", 0.002],
  ["users", 0.005],
  ["projects", 0.005],
  ["tickets", 0.15],
  ["ticket_comments", 0.3],
  ["documents", 0.04],
  ["invoices", 0.03],
  ["invoice_items", 0.09],
  ["payments", 0.02],
  ["appointments", 0.03],
  ["time_entries", 0.12],
  ["notifications", 0.08],
];

export function plan(rows: number): Record<string, number> {
  if (!Number.isInteger(rows) || rows < 13) throw new RangeError("rows must be a whole number of at least 13");
  const counts: Record<string, number> = {};
  let used = 0;
  for (const [table, share] of SHARES) {
    counts[table] = Math.max(table === "users" ? 3 : 1, Math.floor(rows * share));
    used += counts[table];
  }
  counts.activity_log = Math.max(1, rows - used);
  return counts;
}

// Pseudo-random but deterministic picks from the row number x. Multiplicative hashing spreads
// picks evenly whatever the table sizes (a plain (x * k) % n sticks to one value when k is a
// multiple of n).
const hashOf = (x: string, salt: number) => `(((${x} + ${salt}) * 2654435761) % 4294967296)`;
const pick = (x: string, salt: number, mod: number) => `(${hashOf(x, salt)} % ${mod})`;
const ts = (x: string, spreadMinutes: number) =>
  `strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', '+' || ${pick(x, 7919, spreadMinutes)} || ' minutes')`;
const oneOf = (x: string, mul: number, values: string[]) =>
  `CASE ${pick(x, mul, values.length)} ${values.map((v, i) => `WHEN ${i} THEN ${v}`).join(" ")} END`;

const NAMES = ["'Ada Lovelace'", "'Seán O''Brien'", "'Zoë Kravitz'", "'山田 太郎'", "'José Núñez'", "'Amélie Poulain'", "'Ngozi Okonjo'", "'Bob \"the fixer\" Smith'"];
const COMPANIES = ["'Acme Corp'", "'O''Reilly & Sons'", "'Café Zürich GmbH'", "'株式会社テック'", "'Smith; Jones, LLC'", "'Δelta Labs'"];
const SUBJECTS = [
  "'Printer won''t print'",
  "'VPN drops every hour 🔌'",
  "'E-mail: \"mailbox full\"'",
  "'Laptop screen flickers'",
  "'Need access to shared drive'",
  "'Wi-Fi slow on floor 3'",
  "'Backup job failed — urgent'",
  "'パスワードをリセットしたい'",
];
const BODIES = [
  "'Steps:' || char(10) || '1. Turn it off' || char(10) || '2. Turn it on'",
  "'Customer says: ''it worked yesterday''.'",
  "''",
  "NULL",
  "'Error 0x80070005 — access denied; tried twice 🤷'",
  "'Ticket escalated to L2.' || char(10) || char(10) || 'Waiting on vendor.'",
];

function insert(table: string, count: number, start: number, columns: string[], exprs: string[]): string {
  return `INSERT INTO ${table} (${columns.join(", ")})
WITH RECURSIVE n(x) AS (SELECT ${start} UNION ALL SELECT x + 1 FROM n WHERE x < ${start + count - 1})
SELECT ${exprs.join(",\n       ")} FROM n`;
}

/** One INSERT … SELECT per chunk of a table; x runs 1..count across chunks. */
function statementsFor(table: string, count: number, counts: Record<string, number>, chunk: number): string[] {
  const c = counts;
  const clientId = (x: string, mul: number) => `printf('cli_%05d', 1 + ${pick(x, mul, c.clients)})`;
  const staff = Math.max(2, Math.min(c.users - 1, Math.ceil(c.users * 0.2)));
  const staffId = (x: string, mul: number) => `printf('user_%05d', 1 + ${pick(x, mul, staff)})`;
  const userId = (x: string, mul: number) => `printf('user_%05d', 1 + ${pick(x, mul, c.users)})`;
  const defs: Record<string, { columns: string[]; exprs: (x: string) => string[] }> = {
    clients: {
      columns: ["id", "company_name", "contact_name", "email", "phone", "address", "plan", "status", "notes", "created_at", "updated_at"],
      exprs: (x) => [
        `printf('cli_%05d', ${x})`,
        `${oneOf(x, 1, COMPANIES)} || ' #' || ${x}`,
        oneOf(x, 3, NAMES),
        `'contact' || ${x} || '@example.com'`,
        `CASE WHEN ${x} % 4 = 0 THEN NULL ELSE printf('+1-555-%04d', ${pick(x, 37, 10000)}) END`,
        `${x} || ' Main St' || char(10) || 'Springfield'`,
        oneOf(x, 5, ["'basic'", "'standard'", "'premium'"]),
        `CASE WHEN ${x} % 17 = 0 THEN 'suspended' ELSE 'active' END`,
        `CASE WHEN ${x} % 3 = 0 THEN NULL ELSE 'Prefers e-mail. Key code: ''#' || ${x} || '''' END`,
        ts(x, 1440),
        ts(x, 2880),
      ],
    },
    users: {
      columns: ["id", "client_id", "email", "full_name", "role", "hourly_rate", "is_active", "last_login_at", "created_at"],
      exprs: (x) => [
        `printf('user_%05d', ${x})`,
        `CASE WHEN ${x} <= ${staff} THEN NULL ELSE ${clientId(x, 13)} END`,
        `'user' || ${x} || '@example.com'`,
        `${oneOf(x, 7, NAMES)} || ' ' || ${x}`,
        `CASE WHEN ${x} = 1 THEN 'admin' WHEN ${x} <= ${staff} THEN 'technician' ELSE 'client' END`,
        `CASE WHEN ${x} <= ${staff} THEN 60 + ${pick(x, 11, 90)} + 0.5 ELSE NULL END`,
        `CASE WHEN ${x} % 23 = 0 THEN 0 ELSE 1 END`,
        `CASE WHEN ${x} % 5 = 0 THEN NULL ELSE ${ts(x, 400000)} END`,
        ts(x, 2000),
      ],
    },
    projects: {
      columns: ["id", "client_id", "name", "description", "status", "budget", "starts_on", "ends_on", "created_at"],
      exprs: (x) => [
        x,
        clientId(x, 31),
        `'Project ' || ${x} || ': ' || ${oneOf(x, 3, ["'Office move'", "'M365 migration'", "'Network refresh 🚀'", "'Server room \"clean-up\"'"])}`,
        oneOf(x, 5, BODIES),
        oneOf(x, 7, ["'planned'", "'active'", "'on_hold'", "'done'"]),
        `CASE WHEN ${x} % 4 = 0 THEN NULL ELSE 1000 + ${pick(x, 101, 50000)} * 1.25 END`,
        `date('2026-01-01', '+' || ${pick(x, 13, 300)} || ' days')`,
        `CASE WHEN ${x} % 3 = 0 THEN NULL ELSE date('2026-06-01', '+' || ${pick(x, 17, 300)} || ' days') END`,
        ts(x, 5000),
      ],
    },
    tickets: {
      columns: ["id", "client_id", "project_id", "created_by", "assigned_to", "subject", "description", "status", "priority", "category", "due_at", "resolved_at", "created_at", "updated_at"],
      exprs: (x) => [
        x,
        clientId(x, 7919),
        `CASE WHEN ${x} % 3 = 0 THEN 1 + ${pick(x, 29, c.projects)} ELSE NULL END`,
        userId(x, 53),
        `CASE WHEN ${x} % 6 = 0 THEN NULL ELSE ${staffId(x, 59)} END`,
        `${oneOf(x, 11, SUBJECTS)} || ' (#' || ${x} || ')'`,
        oneOf(x, 13, BODIES),
        oneOf(x, 17, ["'open'", "'in_progress'", "'waiting'", "'resolved'", "'closed'"]),
        oneOf(x, 19, ["'low'", "'normal'", "'normal'", "'high'", "'urgent'"]),
        oneOf(x, 23, ["'hardware'", "'software'", "'network'", "'account'", "NULL"]),
        `CASE WHEN ${x} % 2 = 0 THEN ${ts(x, 500000)} ELSE NULL END`,
        `CASE WHEN ${x} % 5 < 2 THEN ${ts(x, 520000)} ELSE NULL END`,
        ts(x, 480000),
        ts(x, 490000),
      ],
    },
    ticket_comments: {
      columns: ["id", "ticket_id", "author_id", "body", "is_internal", "created_at"],
      exprs: (x) => [
        x,
        `1 + ${pick(x, 104729, c.tickets)}`,
        `CASE WHEN ${x} % 11 = 0 THEN NULL ELSE ${userId(x, 61)} END`,
        `${oneOf(x, 7, ["'Thanks!'", "'Rebooted the router; please retry.'", "'Can''t reproduce — can you send a screenshot?'", "'Spoke to Zoë: fixed ✅'", "'Line one' || char(10) || 'line two'", "'Customer replied: \"still broken\"'"])} || ' [' || ${x} || ']'`,
        `CASE WHEN ${x} % 4 = 0 THEN 1 ELSE 0 END`,
        ts(x, 520000),
      ],
    },
    documents: {
      columns: ["id", "client_id", "ticket_id", "uploaded_by", "file_name", "storage_key", "content_type", "size_bytes", "sha256", "thumbnail", "created_at"],
      exprs: (x) => [
        x,
        clientId(x, 43),
        `CASE WHEN ${x} % 2 = 0 THEN 1 + ${pick(x, 47, c.tickets)} ELSE NULL END`,
        userId(x, 67),
        `${oneOf(x, 3, ["'contract'", "'invoice scan'", "'screenshot'", "'réseau diagramme'", "'O''Neil notes'"])} || ' ' || ${x} || ${oneOf(x, 5, ["'.pdf'", "'.png'", "'.docx'"])}`,
        `'clients/' || ${clientId(x, 43)} || '/documents/' || ${x}`,
        oneOf(x, 5, ["'application/pdf'", "'image/png'", "'application/vnd.openxmlformats-officedocument.wordprocessingml.document'"]),
        `1024 + ${pick(x, 7907, 5000000)}`,
        `printf('%08x%08x%08x%08x%08x%08x%08x%08x', ${hashOf(x, 1)}, ${hashOf(x, 2)}, ${hashOf(x, 3)}, ${hashOf(x, 4)}, ${hashOf(x, 5)}, ${hashOf(x, 6)}, ${hashOf(x, 7)}, ${hashOf(x, 8)})`,
        // NULL, empty and small binary previews (with zero bytes in them).
        `CASE ${x} % 4 WHEN 0 THEN NULL WHEN 1 THEN X'' ELSE CAST(char(137, 80, 78, 71, 13, 10, 26, 10) || printf('%08x', ${hashOf(x, 9)}) || zeroblob(16 + ${x} % 48) AS BLOB) END`,
        ts(x, 500000),
      ],
    },
    invoices: {
      columns: ["id", "client_id", "number", "status", "currency", "subtotal", "tax", "total", "amount_paid", "issued_on", "due_on", "notes", "created_at"],
      exprs: (x) => [
        x,
        clientId(x, 71),
        `printf('INV-2026-%06d', ${x})`,
        oneOf(x, 5, ["'draft'", "'sent'", "'sent'", "'overdue'", "'void'"]),
        oneOf(x, 7, ["'USD'", "'USD'", "'EUR'"]),
        `(${pick(x, 97, 200000)} + 1) / 100.0`,
        `round((${pick(x, 97, 200000)} + 1) / 100.0 * 0.0825, 2)`,
        `round((${pick(x, 97, 200000)} + 1) / 100.0 * 1.0825, 2)`,
        "0",
        `date('2026-01-01', '+' || ${pick(x, 13, 330)} || ' days')`,
        `date('2026-02-01', '+' || ${pick(x, 13, 330)} || ' days')`,
        `CASE WHEN ${x} % 6 = 0 THEN 'Net 30 — thank you!' ELSE NULL END`,
        ts(x, 480000),
      ],
    },
    invoice_items: {
      columns: ["id", "invoice_id", "description", "quantity", "unit_price", "amount"],
      exprs: (x) => [
        x,
        `1 + ${pick(x, 89, c.invoices)}`,
        `${oneOf(x, 3, ["'On-site support'", "'Remote session'", "'Hardware: 27\" monitor'", "'Licence — 1 year'"])} || ' #' || ${x}`,
        `1 + ${x} % 8 * 0.25`,
        `(${pick(x, 83, 50000)} + 100) / 100.0`,
        `round((1 + ${x} % 8 * 0.25) * (${pick(x, 83, 50000)} + 100) / 100.0, 2)`,
      ],
    },
    payments: {
      columns: ["id", "invoice_id", "amount", "method", "reference", "paid_at"],
      exprs: (x) => [
        x,
        `1 + ${pick(x, 79, c.invoices)}`,
        `(${pick(x, 73, 100000)} + 100) / 100.0`,
        oneOf(x, 3, ["'card'", "'bank_transfer'", "'cash'", "'check'"]),
        `CASE WHEN ${x} % 3 = 0 THEN NULL ELSE printf('TX-%010d', ${hashOf(x, 11)}) END`,
        ts(x, 500000),
      ],
    },
    appointments: {
      columns: ["id", "client_id", "technician_id", "ticket_id", "title", "location", "starts_at", "ends_at", "status"],
      exprs: (x) => [
        x,
        clientId(x, 41),
        staffId(x, 37),
        `CASE WHEN ${x} % 2 = 0 THEN 1 + ${pick(x, 101, c.tickets)} ELSE NULL END`,
        `'Visit ' || ${x} || ': ' || ${oneOf(x, 3, ["'install'", "'repair'", "'audit 🔍'"])}`,
        `CASE WHEN ${x} % 4 = 0 THEN NULL ELSE ${x} % 99 || ' Client Rd, Suite ''B''' END`,
        `strftime('%Y-%m-%dT%H:00:00Z', '2026-01-01', '+' || ${pick(x, 31, 8000)} || ' hours')`,
        `strftime('%Y-%m-%dT%H:00:00Z', '2026-01-01', '+' || (${pick(x, 31, 8000)} + 1 + ${x} % 3) || ' hours')`,
        oneOf(x, 7, ["'scheduled'", "'completed'", "'cancelled'"]),
      ],
    },
    time_entries: {
      columns: ["id", "ticket_id", "user_id", "minutes", "billable", "description", "work_date", "invoice_id"],
      exprs: (x) => [
        x,
        `1 + ${pick(x, 7907, c.tickets)}`,
        staffId(x, 53),
        `15 * (1 + ${x} % 12)`,
        `CASE WHEN ${x} % 5 = 0 THEN 0 ELSE 1 END`,
        `CASE WHEN ${x} % 3 = 0 THEN NULL ELSE 'Worked on it: ' || ${oneOf(x, 5, ["'diagnosis'", "'fix'", "'follow-up call'"])} END`,
        `date('2026-01-01', '+' || ${pick(x, 19, 330)} || ' days')`,
        `CASE WHEN ${x} % 4 = 0 THEN 1 + ${pick(x, 61, c.invoices)} ELSE NULL END`,
      ],
    },
    notifications: {
      columns: ["id", "user_id", "kind", "title", "body", "link", "read_at", "created_at"],
      exprs: (x) => [
        x,
        userId(x, 97),
        oneOf(x, 3, ["'ticket_update'", "'invoice_sent'", "'appointment_reminder'"]),
        `'Update on #' || ${x}`,
        `CASE WHEN ${x} % 4 = 0 THEN NULL ELSE 'Your ticket has a new reply 💬' END`,
        `'/tickets/' || (1 + ${pick(x, 71, c.tickets)})`,
        `CASE WHEN ${x} % 2 = 0 THEN NULL ELSE ${ts(x, 520000)} END`,
        ts(x, 510000),
      ],
    },
    activity_log: {
      columns: ["id", "user_id", "action", "entity_type", "entity_id", "details", "ip_address", "created_at"],
      exprs: (x) => [
        x,
        `CASE WHEN ${x} % 9 = 0 THEN NULL ELSE ${userId(x, 89)} END`,
        oneOf(x, 5, ["'ticket_created'", "'ticket_updated'", "'comment_added'", "'login'", "'invoice_sent'", "'document_uploaded'"]),
        oneOf(x, 5, ["'ticket'", "'ticket'", "'comment'", "'user'", "'invoice'", "'document'"]),
        `CAST(1 + ${pick(x, 67, 100000)} AS TEXT)`,
        `json_object('source', 'seed', 'n', ${x}, 'note', ${oneOf(x, 3, ["'ok'", "'it''s fine'", "'ünïcödé 🎫'"])})`,
        `printf('10.%d.%d.%d', ${x} % 256, ${pick(x, 7, 256)}, ${pick(x, 13, 256)})`,
        ts(x, 520000),
      ],
    },
  };
  const def = defs[table];
  const out: string[] = [];
  for (let start = 1; start <= count; start += chunk) {
    out.push(insert(table, Math.min(chunk, count - start + 1), start, def.columns, def.exprs("x")));
  }
  return out;
}

export async function seedDemoData(db: D1Database, opts: SeedOptions): Promise<SeedResult> {
  const counts = plan(opts.rows);
  const existing = await db.prepare("SELECT count(*) AS n FROM clients").first<{ n: number }>();
  if ((existing?.n ?? 0) > 0) {
    throw new Error("the database already has clients: seed only a freshly migrated database");
  }
  const chunk = opts.chunkRows ?? 50_000;
  for (const [table, count] of Object.entries(counts)) {
    let done = 0;
    for (const sql of statementsFor(table, count, counts, chunk)) {
      await db.prepare(sql).run();
      done = Math.min(count, done + chunk);
      opts.onProgress?.(table, done, count);
    }
  }
  // Payments ran the trigger that marks covered invoices paid; keep the sequence realistic too.
  await db.prepare("UPDATE sqlite_sequence SET seq = seq + 7 WHERE name = 'invoices'").run();
  return { tables: counts, total: Object.values(counts).reduce((a, b) => a + b, 0) };
}
