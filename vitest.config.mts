import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

// The slowest files first (measured in CI), so the two workers finish together instead of one
// running the longest file alone at the end; a fresh clone has no timing cache to go by.
const SLOWEST_FIRST = [
  "docs",
  "values",
  "restore-safety",
  "api",
  "restore",
  "datasets",
  "restoration-script",
  "retention-gfs",
  "offsite",
  "crash",
  "dashboard",
  "consistency",
  "retention",
];

class SlowestFirst extends BaseSequencer {
  async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const name = /([^/]+)\.test\.ts$/.exec(f.moduleId)?.[1] ?? "";
      const i = SLOWEST_FIRST.indexOf(name);
      return i === -1 ? SLOWEST_FIRST.length : i;
    };
    const base = await super.sort(files);
    return base.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

// Node-side tests: each test file starts its own local workerd (real D1 + R2 through
// getPlatformProxy) in a temp directory, and may run wrangler and sqlite3 as child processes.
export default defineConfig({
  test: {
    environment: "node",
    include: ["tests/**/*.test.ts"],
    exclude: ["tests/workers/**", "node_modules/**"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Two cores: more workers only make the workerd instances fight for CPU.
    maxWorkers: 2,
    setupFiles: ["tests/setup.ts"],
    sequence: { sequencer: SlowestFirst },
  },
});
