// `npm run seed -- --rows 100000 [--persist-to DIR]` (`--help` for all flags): deterministic demo data in the local D1
// (migrate first: `npm run migrate:local`).
import { openLocalPlatform } from "../lib/local";
import { seedDemoData } from "../lib/seed";
import { intFlag, parseCli } from "./cli-args";

// A bound that says "this is a demo": 10 million rows is ~2 GB of local SQLite and minutes of
// inserts; past it a typo (an extra zero) would fill the disk instead of failing.
const MAX_ROWS = 10_000_000;

const USAGE = `
npm run seed -- [--rows N] [--persist-to DIR] [--if-empty]

Deterministic demo data in the local D1 (run \`npm run migrate:local\` first).
  --rows N          about N rows over the 13 portal tables, 13 to ${MAX_ROWS.toLocaleString("en-US")} (default 2000)
  --persist-to DIR  local state directory (default: wrangler's .wrangler/state)
  --if-empty        do nothing when the database already has clients
  -h, --help        this text
`;

async function main(): Promise<void> {
  const values = parseCli("seed", USAGE, {
    rows: { type: "string", default: "2000" },
    "persist-to": { type: "string" },
    "if-empty": { type: "boolean", default: false },
  });
  const rows = intFlag("seed", "--rows", values.rows ?? "2000", 13, MAX_ROWS);
  const platform = await openLocalPlatform({ persistTo: values["persist-to"] });
  try {
    if (values["if-empty"]) {
      const n = await platform.env.DB.prepare("SELECT count(*) AS n FROM clients").first<{ n: number }>();
      if ((n?.n ?? 0) > 0) {
        console.log(JSON.stringify({ seeded: false, reason: "database already has data" }));
        return;
      }
    }
    const started = Date.now();
    const result = await seedDemoData(platform.env.DB, {
      rows,
      onProgress: (table, done, total) => process.stderr.write(`\rseeding ${table}: ${done}/${total}        `),
    });
    process.stderr.write("\n");
    console.log(JSON.stringify({ seeded: result.tables, total: result.total, ms: Date.now() - started }));
  } finally {
    await platform.dispose();
  }
}

main().catch((e) => {
  console.error(`seed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
