// Node-side access to the same local D1/R2 state that `wrangler ... --local` uses.
// getPlatformProxy starts workerd with the bindings from wrangler.toml, so scripts and
// tests talk to a real local D1 (SQLite) and R2 (disk), never a mock.
import path from "node:path";

export interface LocalPlatform {
  env: { DB: D1Database; DOCUMENTS: R2Bucket };
  dispose: () => Promise<void>;
}

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
/** Wrangler's default local state directory (what `wrangler d1 execute --local` uses). */
export const DEFAULT_PERSIST_TO = path.join(PROJECT_ROOT, ".wrangler", "state");

export async function openLocalPlatform(
  opts: { persistTo?: string; configPath?: string } = {},
): Promise<LocalPlatform> {
  const persistTo = path.resolve(opts.persistTo ?? DEFAULT_PERSIST_TO);
  // Loaded here, not at the top: wrangler takes ~1.4 s to import, which a CLI's --help, its
  // argument errors and every restore from a file would otherwise pay for nothing.
  const { getPlatformProxy } = await import("wrangler");
  // wrangler's --persist-to DIR stores under DIR/v3; getPlatformProxy's persist.path is that v3 directory.
  const proxy = await getPlatformProxy<{ DB: D1Database; DOCUMENTS: R2Bucket }>({
    configPath: opts.configPath ?? path.join(PROJECT_ROOT, "wrangler.toml"),
    persist: { path: path.join(persistTo, "v3") },
  });
  return { env: proxy.env, dispose: () => proxy.dispose() };
}
