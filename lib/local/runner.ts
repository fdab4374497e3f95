// Runs the backup library inside workerd (the production runtime) against the local D1/R2 state
// that `wrangler --local` uses. The CLIs and the benchmark call it: in workerd the dump reads D1
// in-process and hashes natively, several times faster than driving the bindings from Node.
import path from "node:path";
import { DEFAULT_PERSIST_TO, PROJECT_ROOT } from "./platform";

export interface LocalWorker {
  call<T>(pathname: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; body: T }>;
  /** Where the worker listens on 127.0.0.1 (another local worker can fetch it there). */
  url: URL;
  dispose(): Promise<void>;
}

export async function startLocalWorker(
  opts: {
    persistTo?: string;
    configPath?: string;
    secrets?: Record<string, string | undefined>;
    /** worker.ts (default), or the benchmark's D1 host (d1-host.ts): D1 in a workerd process of its own. */
    entry?: "worker" | "d1-host";
  } = {},
): Promise<LocalWorker> {
  // Offline: do not let miniflare try to download the Request.cf placeholder.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  process.env.WRANGLER_SEND_METRICS ??= "false";
  // Loaded on use: importing wrangler costs ~1.4 s (see openLocalPlatform).
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: opts.configPath ?? path.join(PROJECT_ROOT, "wrangler.toml"),
    entrypoint: path.join(PROJECT_ROOT, "lib", "local", `${opts.entry ?? "worker"}.ts`),
    // Secrets the CLI read (env or .dev.vars) are handed over explicitly: one source, not two.
    bindings: Object.fromEntries(
      Object.entries(opts.secrets ?? {})
        .filter((e): e is [string, string] => e[1] !== undefined)
        .map(([name, value]) => [name, { type: "secret_text" as const, value }]),
    ),
    dev: {
      persist: path.resolve(opts.persistTo ?? DEFAULT_PERSIST_TO),
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      watch: false,
      logLevel: "warn",
    },
  });
  await worker.ready;
  const url = await worker.url;
  return {
    url,
    async call<T>(pathname: string, init: { method?: string; body?: unknown } = {}) {
      const res = await worker.fetch(`http://local${pathname}`, {
        method: init.method ?? "GET",
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        headers: { "content-type": "application/json" },
      });
      const text = await res.text();
      try {
        return { status: res.status, body: JSON.parse(text) as T };
      } catch {
        // workerd's own answers (a crashed or restarted worker) are plain text: say what it said.
        throw new Error(`local worker answered ${res.status} to ${pathname}: ${text.slice(0, 300)}`);
      }
    },
    dispose: () => worker.dispose(),
  };
}
