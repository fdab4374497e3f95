// postinstall: fixes a race in miniflare's SynchronousFetcher (used by getPlatformProxy, which the
// CLIs and the Node tests drive local D1/R2 through).
//
// SynchronousFetcher.fetch blocks with one `Atomics.wait(handle, 0, 0)`; its helper thread answers
// with `Atomics.store(handle, 0, 1)` then `Atomics.notify(handle, 0)`. When the helper is
// preempted between the store and the notify, the main thread sees 1, returns without waiting,
// posts the NEXT request and waits again; the late notify of the previous request then wakes it
// while the value is still 0, it reads no message, and `assert(message?.id === id)` fails
// ("false == true"). From then on every answer is one request behind, so the whole proxy is
// broken. Measured here: 1 to 10 failing tests in 3 of 4 runs of two test files side by side.
// The fix is the textbook one: wait until the value really changed.
//
// Idempotent; exits non-zero when a miniflare copy has neither the known code nor the fix, so an
// upgrade that changes the code is noticed instead of silently running unpatched.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const copies = [
  "node_modules/miniflare/dist/src/index.js",
  "node_modules/wrangler/node_modules/miniflare/dist/src/index.js",
  "node_modules/@cloudflare/vitest-pool-workers/node_modules/miniflare/dist/src/index.js",
];
const MARK = "/* d1-backup: wait until notified for real */";
const UNPATCHED = /Atomics\.wait\(\s*this\.#notifyHandle,[^)]*\);/;
const PATCHED = `do { ${MARK} Atomics.wait(this.#notifyHandle, 0, 0); } while (Atomics.load(this.#notifyHandle, 0) === 0);`;

let failed = false;
for (const rel of copies) {
  const file = path.join(root, rel);
  if (!fs.existsSync(file)) continue;
  const src = fs.readFileSync(file, "utf8");
  if (src.includes(MARK)) continue;
  if (!src.includes("SynchronousFetcher = class") || !UNPATCHED.test(src)) {
    console.error(`patch-miniflare: ${rel}: SynchronousFetcher's Atomics.wait not found; review scripts/patch-miniflare.cjs for this miniflare version`);
    failed = true;
    continue;
  }
  fs.writeFileSync(file, src.replace(UNPATCHED, PATCHED));
  console.log(`patch-miniflare: patched ${rel}`);
}
process.exit(failed ? 1 : 0);
