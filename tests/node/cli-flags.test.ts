// seed and bench as a user meets them: --help answers, a wrong flag is one line and exit 2.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/local/platform";

const TSX = path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const run = (script: string, args: string[]) => {
  const r = spawnSync(TSX, [path.join(PROJECT_ROOT, "scripts", script), ...args], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe.each(["seed.ts", "bench.ts"])("%s flags", (script) => {
  it("--help prints the usage and exits 0", () => {
    const r = run(script, ["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^npm run (seed|bench) --/);
    expect(r.out).toContain("10,000,000");
  });

  it.each([["--bogus"], ["positional"], script === "seed.ts" ? ["--rows", "99999999999"] : ["--sizes", "100,abc"]])("%s: one line on stderr, exit 2, no stack", (...args) => {
    const r = run(script, args);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/\(see --help\)$/m);
    expect(r.err).not.toMatch(/\bat .*:\d+:\d+/);
    expect(r.out).toBe("");
  });
});

describe("send-test-reminder never prints REMINDER_WEBHOOK_URL's secrets", () => {
  it.each([
    "https://u:p4ssw0rdZZ@hooks.invalid/T0/SECRETPATH?token=QTOKEN",
    "https://hooks.invalid/T0/SECRETPATH?token=QTOKEN",
  ])("%s: a failed delivery, exit 1, no secret in the output", (url) => {
    const r = spawnSync(TSX, [path.join(PROJECT_ROOT, "scripts", "send-test-reminder.ts"), "--date", "2027-01-01", "--json"], {
      cwd: PROJECT_ROOT,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, REMINDER_WEBHOOK_URL: url },
    });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/REMINDER_WEBHOOK_URL is invalid|could not reach hooks\.invalid/);
    for (const s of ["p4ssw0rd", "SECRETPATH", "QTOKEN"]) expect(r.stdout + r.stderr).not.toContain(s);
  });
});
