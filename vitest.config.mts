import { defineConfig } from "vitest/config";

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
  },
});
