// Settings for the Node CLIs: the shell's environment first, then .dev.vars beside wrangler.toml
// (what `wrangler dev` and `npm run demo` use), so one file configures the app and the CLIs alike.
import fs from "node:fs";
import path from "node:path";
import { PROJECT_ROOT } from "./platform";

/** The dotenv-style NAME=value lines of a file (quotes removed; "\n" kept as written). */
function readDotenv(file: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    out[m[1]] = m[2].replace(/^"(.*)"$/s, "$1").replace(/^'(.*)'$/s, "$1");
  }
  return out;
}

/** A setting for a local tool: process.env, else .dev.vars (of dir, default the project). */
export function localSetting(name: string, dir: string = PROJECT_ROOT): string | undefined {
  const fromEnv = process.env[name];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const value = readDotenv(path.join(dir, ".dev.vars"))[name];
  return value === undefined || value === "" ? undefined : value;
}
