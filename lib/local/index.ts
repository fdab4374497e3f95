// Node-side access to local state: the platform proxy (local D1/R2), the workerd runner for the
// CLIs, and the pinned wrangler. (worker.ts and d1-host.ts are the runner's workerd entries, not
// part of this face.)
export { DEFAULT_PERSIST_TO, openLocalPlatform, PROJECT_ROOT, type LocalPlatform } from "./platform";
export { startLocalWorker, type LocalWorker } from "./runner";
export { localSetting } from "./settings";
export { localD1File, localD1Files, WRANGLER_BIN, wranglerEnv } from "./wrangler";
