// The project's pinned wrangler and the local state it keeps, for the CLIs, the bench and tests.
import fs from "node:fs";
import path from "node:path";
import { PROJECT_ROOT } from "./platform";

export const WRANGLER_BIN = path.join(PROJECT_ROOT, "node_modules", ".bin", "wrangler");

/** What every wrangler run gets: no prompts, no telemetry, no colour codes in error text, offline cf object. */
export function wranglerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CI: "true",
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    NEXT_TELEMETRY_DISABLED: "1",
    VERCEL_TELEMETRY_DISABLED: "1",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...extra,
  };
}

/** The SQLite files of local D1 databases in a wrangler state directory (metadata.sqlite excluded). */
export function localD1Files(persistTo: string): string[] {
  const dir = path.join(path.resolve(persistTo), "v3", "d1", "miniflare-D1DatabaseObject");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")
    .map((f) => path.join(dir, f));
}

/** The one local D1 file in a state directory; anything else is an error naming the directory. */
export function localD1File(persistTo: string): string {
  const files = localD1Files(persistTo);
  if (files.length !== 1) throw new Error(`expected one local D1 database file under ${persistTo}, found ${files.length}`);
  return files[0];
}
