import { defineConfig } from "vitest/config";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));

// Node-side tests: each test file starts its own local workerd (real D1 + R2 through
// getPlatformProxy) in a temp directory, and may run wrangler and sqlite3 as child processes.
export default defineConfig({
  resolve: { alias: { "@": root } },
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
