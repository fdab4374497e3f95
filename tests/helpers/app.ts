// The real app for API tests: the production build (@cloudflare/next-on-pages → .vercel/output)
// served by `wrangler pages dev` — workerd, the runtime Pages uses — against local D1/R2 in a temp
// directory. Chosen over `next dev`: next dev runs edge routes in Next's own sandbox, which lacks
// CompressionStream (every backup fails there), compiles each route on first hit, and cannot run
// twice on one .next directory; the build takes ~30 s once, each server then starts in ~2 s.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { CLI_ENV, tempDir } from "./local";

const OUTPUT_DIR = path.join(PROJECT_ROOT, ".vercel", "output", "static");
const WORKER = path.join(OUTPUT_DIR, "_worker.js", "index.js");
const STAMP = path.join(PROJECT_ROOT, ".vercel", "output", "d1b-build-stamp.json");
const LOCK = path.join(PROJECT_ROOT, ".vercel", "d1b-build.lock");
const BIN = path.join(PROJECT_ROOT, "node_modules", ".bin");

/** Everything the build reads that changes between commits. */
const BUILD_INPUTS = ["app", "lib", "middleware.ts", "next.config.js", "tsconfig.json", "tsconfig.next.json", "vercel.json", "package-lock.json"];

function newestInput(): number {
  let newest = 0;
  const visit = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of BUILD_INPUTS) visit(path.join(PROJECT_ROOT, p));
  return newest;
}

function buildIsFresh(): boolean {
  if (!fs.existsSync(WORKER)) return false;
  const workerMtime = fs.statSync(WORKER).mtimeMs;
  // Our stamp records when our build started (inputs edited during it must count as newer). A
  // build made outside the tests (npm run build:pages in CI) leaves a worker the stamp does not
  // describe; its mtime (the worker is written last) stands in.
  let builtAt = workerMtime;
  try {
    const stamp = JSON.parse(fs.readFileSync(STAMP, "utf8")) as { startedAt: number; workerMtime: number };
    if (stamp.workerMtime === workerMtime) builtAt = stamp.startedAt;
  } catch {
    // no stamp, or not ours
  }
  return builtAt >= newestInput();
}

/**
 * Builds the app unless .vercel/output is newer than every input (CI may build first with
 * `npm run build:pages`; then this is a no-op). A lock directory keeps parallel test files from
 * building at once.
 */
export async function ensureAppBuild(): Promise<{ built: boolean; ms: number }> {
  const started = Date.now();
  fs.mkdirSync(path.dirname(LOCK), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      break;
    } catch {
      // Another test file is building; a lock older than 10 minutes belongs to a dead run.
      try {
        if (Date.now() - fs.statSync(LOCK).mtimeMs > 10 * 60_000) fs.rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // gone already
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    if (buildIsFresh()) return { built: false, ms: Date.now() - started };
    const before = Date.now();
    const res = spawnSync(path.join(BIN, "next-on-pages"), [], {
      cwd: PROJECT_ROOT,
      env: CLI_ENV,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    if (res.status !== 0) throw new Error(`next-on-pages build failed (${res.status}):\n${(res.stdout + res.stderr).slice(-4000)}`);
    fs.writeFileSync(STAMP, JSON.stringify({ startedAt: before, workerMtime: fs.statSync(WORKER).mtimeMs, inputs: BUILD_INPUTS }));
    return { built: true, ms: Date.now() - started };
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function dotenvQuote(v: string): string {
  return `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

export interface AppServer {
  url: string;
  persistTo: string;
  request(p: string, init?: RequestOptions): Promise<RawResponse>;
  log(): string;
  stop(): Promise<void>;
  /** SIGKILL of wrangler and its workerd together (a crash, not a shutdown); resolves once gone. */
  crash(): Promise<void>;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  // Tests read response JSON by path and assert on it; `any` is the honest type of that.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json<T = any>(): T;
}

/**
 * One HTTP request with node:http, path sent exactly as given (no `..` normalisation, no
 * re-encoding) and `accept-encoding: identity`, so headers like content-length arrive as the app set them.
 */
export function rawRequest(base: string, p: string, init: RequestOptions = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: init.method ?? "GET",
        path: p,
        headers: { "accept-encoding": "identity", ...init.headers },
        // A fresh connection per request: Node's default keep-alive agent can reuse a socket the
        // server is just closing, which surfaces as a random "socket hang up".
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          const text = body.toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: () => {
              try {
                return JSON.parse(text);
              } catch {
                throw new Error(`not JSON (status ${res.statusCode}): ${text.slice(0, 300)}`);
              }
            },
          });
        });
      },
    );
    req.on("error", reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`timeout: ${init.method ?? "GET"} ${p}`)));
    req.end();
  });
}

/**
 * Starts `wrangler pages dev` on the built app with exactly `vars` as its environment (nothing from
 * the developer's .dev.vars: it runs from a temp directory holding its own wrangler.toml and
 * .dev.vars), local D1/R2 in `persistTo`. Detached into its own process group so stop() can end
 * wrangler and its workerd together.
 */
export async function startApp(opts: { persistTo: string; vars: Record<string, string | undefined> }): Promise<AppServer> {
  const cwd = tempDir("app");
  const toml = fs
    .readFileSync(path.join(PROJECT_ROOT, "wrangler.toml"), "utf8")
    .replace(/^pages_build_output_dir = .*$/m, `pages_build_output_dir = ${JSON.stringify(OUTPUT_DIR)}`)
    .replace(/^migrations_dir = .*$/m, `migrations_dir = ${JSON.stringify(path.join(PROJECT_ROOT, "migrations"))}`);
  fs.writeFileSync(path.join(cwd, "wrangler.toml"), toml);
  const vars = Object.entries(opts.vars).filter((e): e is [string, string] => e[1] !== undefined);
  fs.writeFileSync(path.join(cwd, ".dev.vars"), vars.map(([k, v]) => `${k}=${dotenvQuote(v)}\n`).join(""));

  const [port, inspectorPort] = [await freePort(), await freePort()];
  const logFile = path.join(cwd, "server.log");
  const out = fs.openSync(logFile, "w");
  const env: NodeJS.ProcessEnv = { ...CLI_ENV };
  // Only the .dev.vars above may reach the app.
  delete env.CLOUDFLARE_INCLUDE_PROCESS_ENV;
  delete env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV;
  const child: ChildProcess = spawn(
    path.join(BIN, "wrangler"),
    [
      "pages", "dev",
      "--persist-to", path.resolve(opts.persistTo),
      "--ip", "127.0.0.1",
      "--port", String(port),
      "--inspector-port", String(inspectorPort),
      "--log-level", "warn",
      "--show-interactive-dev-session=false",
    ],
    { cwd, env, detached: true, stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}`;
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
  let exited: number | null | undefined;
  child.on("exit", (code) => (exited = code));

  const stop = async () => {
    if (exited !== undefined || child.pid === undefined) return;
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      return; // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await gone;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`wrangler pages dev exited (${exited}):\n${log().slice(-3000)}`);
    try {
      const res = await rawRequest(url, "/");
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler pages dev did not come up in 90 s:\n${log().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    url,
    persistTo: opts.persistTo,
    request: (p, init = {}) => rawRequest(url, p, init),
    log,
    stop,
    crash: async () => {
      if (exited !== undefined || child.pid === undefined) return;
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      process.kill(-child.pid, "SIGKILL");
      await gone;
      // The group's other members (workerd) die with the signal; wait until none is left.
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(-child.pid, 0);
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("workerd outlived SIGKILL of its process group");
    },
  };
}
