// A real S3 server on 127.0.0.1 (tests/helpers/s3-server-main.cjs) and, in front of it, a small
// HTTP proxy that can refuse or drop requests: the off-site tests' "server answers 500 / 403 /
// is down" without mocking S3.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { tempDir } from "./local";

// s3rver's default credentials: it checks SigV4 signatures against them.
export const S3_ACCESS_KEY = "S3RVER";
export const S3_SECRET_KEY = "S3RVER";

export interface S3Server {
  port: number;
  stop(): Promise<void>;
}

export async function startS3Server(buckets: string[]): Promise<S3Server> {
  const dir = tempDir("s3");
  const child: ChildProcess = spawn(process.execPath, ["--openssl-legacy-provider", path.join(PROJECT_ROOT, "tests/helpers/s3-server-main.cjs"), dir, ...buckets], {
    detached: true, // its own process group, stopped by group id
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`S3 server exited (${code}): ${stderr}`)));
  });
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(-child.pid!, "SIGTERM");
      await exited;
    },
  };
}

export type FaultMode = "pass" | "500" | "403" | "drop";

export interface FaultProxy {
  url: string;
  /** Applies to requests matching `when` (all when absent). */
  set(mode: FaultMode, when?: (req: { method: string; url: string }) => boolean): void;
  /** Requests seen (method and path?query), in order. */
  seen: { method: string; url: string; answered: number | "dropped" }[];
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  let mode: FaultMode = "pass";
  let when: ((req: { method: string; url: string }) => boolean) | undefined;
  const seen: FaultProxy["seen"] = [];
  const server = http.createServer((req, res) => {
    const r = { method: req.method ?? "", url: req.url ?? "" };
    const active = mode !== "pass" && (!when || when(r));
    if (active && mode === "drop") {
      seen.push({ ...r, answered: "dropped" });
      req.socket.destroy();
      return;
    }
    if (active) {
      const status = Number(mode);
      seen.push({ ...r, answered: status });
      req.resume();
      req.on("end", () => {
        res.writeHead(status, { "content-type": "application/xml" });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 403 ? "AccessDenied" : "InternalError"}</Code><Message>injected by the test</Message></Error>`);
      });
      return;
    }
    const upstream = http.request({ host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      seen.push({ ...r, answered: up.statusCode ?? 0 });
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    set(m, w) {
      mode = m;
      when = w;
    },
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
