// The backup documents cannot rot: every shell block marked `<!-- doc-test -->` runs, in document
// order, in a scratch copy of the project with its own local D1/R2 state, and must succeed. Every
// `npm run X` in any block must name a real script, and every relative link must resolve.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { CLI_ENV, tempDir } from "../helpers/local";

const DOCS = ["BACKUP_SYSTEM_README.md", "BACKUP_SETUP.md", "BACKUP_RESTORATION.md", "BACKUP_TESTING_SCHEDULE.md", "docs/ARCHITECTURE.md", "README.md"];
const COPY = ["package.json", "wrangler.toml", "tsconfig.json", "migrations", "lib", "scripts", "functions", "docs"];

interface Block {
  tested: boolean;
  lang: string;
  code: string;
  line: number;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
    const tested = lines.slice(Math.max(0, start - 2), start).some((l) => l.trim() === "<!-- doc-test -->");
    out.push({ tested, lang: open[1], code: body.join("\n"), line: start + 1 });
  }
  return out;
}

function sandbox(): string {
  const dir = tempDir("docs");
  for (const entry of COPY) {
    const from = path.join(PROJECT_ROOT, entry);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"));
  return dir;
}

const existing = DOCS.filter((d) => fs.existsSync(path.join(PROJECT_ROOT, d)));
const scripts = Object.keys(JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")).scripts);

describe.each(existing)("%s", (doc) => {
  const text = fs.readFileSync(path.join(PROJECT_ROOT, doc), "utf8");
  const all = blocks(text);

  it("names only project files that exist", () => {
    for (const m of text.matchAll(/`((?:lib|app|scripts|functions|tests|migrations|docs)\/[\w./[\]-]+)`/g)) {
      const file = m[1].replace(/\/$/, "");
      if (/[*…]|YYYY|<|NN/.test(file)) continue; // a pattern, not a path
      expect(fs.existsSync(path.join(PROJECT_ROOT, file)), `${doc} names ${m[1]}`).toBe(true);
    }
  });

  it("names only npm scripts that exist", () => {
    for (const b of all) {
      for (const m of b.code.matchAll(/npm run (?:-s )?([\w:-]+)/g)) {
        expect(scripts, `${doc}:${b.line} npm run ${m[1]}`).toContain(m[1]);
      }
    }
  });

  it("links only to files that exist", () => {
    for (const m of text.matchAll(/\]\((\.{0,2}\/?[\w./-]+?)(#[\w-]*)?\)/g)) {
      if (/^https?:/.test(m[1])) continue;
      expect(fs.existsSync(path.resolve(path.dirname(path.join(PROJECT_ROOT, doc)), m[1])), `${doc} links ${m[1]}`).toBe(true);
    }
  });

  const tested = all.filter((b) => b.tested);
  it.runIf(tested.length > 0)(`runs its ${tested.length} tested command block(s) successfully`, () => {
    const dir = sandbox();
    for (const b of tested) {
      try {
        execFileSync("bash", ["-euo", "pipefail", "-c", b.code], {
          cwd: dir,
          env: { ...CLI_ENV, DOC_TEST: "1" },
          encoding: "utf8",
          stdio: "pipe",
          timeout: 240_000,
        });
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string; message: string };
        // Servers started by a block write logs into the sandbox: show them too.
        const logs = fs
          .readdirSync(dir)
          .filter((f) => f.endsWith(".log"))
          .map((f) => `--- ${f}\n${fs.readFileSync(path.join(dir, f), "utf8").slice(-3000)}`)
          .join("\n");
        throw new Error(
          `${doc}:${b.line} failed (${err.message.split("\n")[0]}):\n${b.code}\n--- stdout\n${err.stdout?.slice(-3000)}\n--- stderr\n${err.stderr?.slice(-3000)}\n${logs}`,
          { cause: e },
        );
      }
    }
    // Each block may start servers and run a backup/restore: a budget per block, not one for the
    // whole guide (the 11 blocks of BACKUP_RESTORATION.md ran past 180 s on a loaded machine).
  }, 120_000 * Math.max(1, tested.length));
});
