// `npm run seed -- --rows 100000 [--persist-to DIR]`: deterministic demo data in the local D1
// (migrate first: `npm run migrate:local`).
import { parseArgs } from "node:util";
import { openLocalPlatform } from "../lib/local";
import { seedDemoData } from "../lib/seed";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: "string", default: "2000" },
      "persist-to": { type: "string" },
      "if-empty": { type: "boolean", default: false },
    },
  });
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 13) throw new Error(`--rows takes a whole number of at least 13 (got ${values.rows})`);
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
