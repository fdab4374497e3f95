// A real HTTP receiver for alert webhooks (node:http on 127.0.0.1, a free port): it records every
// request and answers according to the path, so tests can drive each delivery outcome over a real
// socket. Used by the Node tests directly and, through the workers config's global setup, by the
// cron Worker running inside workerd.
//   /status/<code>/…   answers <code> with a short text body (e.g. 500, 404)
//   /redirect/…        answers 302 to /ok
//   /hang/…            reads the request and never answers
//   anything else      answers 200 "ok" (what Slack answers)
//   GET /__received?prefix=/p   the recorded requests whose path starts with /p, as JSON
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface AlertReceiver {
  /** http://127.0.0.1:<port> */
  url: string;
  received: ReceivedRequest[];
  /** Requests (any path) seen so far, control requests excluded. */
  count(): number;
  close(): Promise<void>;
}

export async function startAlertReceiver(): Promise<AlertReceiver> {
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://receiver");
      if (url.pathname === "/__received") {
        const prefix = url.searchParams.get("prefix") ?? "/";
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(received.filter((r) => r.path.startsWith(prefix))));
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      received.push({ method: req.method ?? "", path: url.pathname, headers, body: Buffer.concat(chunks).toString("utf8") });

      const status = /^\/status\/(\d{3})(\/|$)/.exec(url.pathname);
      if (status) {
        res.writeHead(Number(status[1]), { "content-type": "text/plain" });
        res.end(`receiver says ${status[1]} for ${url.pathname}`);
      } else if (url.pathname.startsWith("/redirect/")) {
        res.writeHead(302, { location: "/ok" });
        res.end();
      } else if (url.pathname.startsWith("/hang/")) {
        // Never answer; close() destroys the socket.
      } else {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok");
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    count: () => received.length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that was just listening and is now closed: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
