// README.md starts with the two commands that work on a fresh machine; CI (.ci/run) runs the second.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/local/platform";

const read = (f: string) => fs.readFileSync(path.join(PROJECT_ROOT, f), "utf8");

describe("README's first commands", () => {
  it("are the demo and the test command, in a sh block at the very top", () => {
    const lines = read("README.md").split("\n");
    expect(lines.slice(0, 4)).toEqual(["```sh", "npm ci && npm run demo", "npm ci && npm test", "```"]);
  });

  it("are what CI runs, in that order", () => {
    const ci = read(".ci/run")
      .split("\n")
      .filter((l) => /^npm /.test(l));
    expect(ci.slice(0, 2)).toEqual(["npm ci", "npm test"]);
    const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
    expect(pkg.scripts.test).toBeTruthy();
    expect(pkg.scripts.demo).toBeTruthy();
  });
});
