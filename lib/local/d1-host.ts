// The benchmark's D1 in a workerd process of its own: a local-only Worker that runs the batches it
// is sent on its real local D1 binding and answers with D1's own results, as JSON over loopback
// HTTP. On Cloudflare a Worker's D1 queries run on another machine; here workerd runs D1 and the
// Worker that calls it on one thread, so nothing a backup does can overlap a read. With D1 behind
// this host, the Worker (lib/local/worker.ts, through remote-d1.ts) and D1 run in two processes.
// Never deployed; only lib/local/runner.ts starts it.
import type { RemoteBatch } from "./remote-d1";

export default {
  async fetch(request: Request, env: { DB: D1Database }): Promise<Response> {
    try {
      const batch = (await request.json()) as RemoteBatch;
      const stmts = batch.statements.map((s) => env.DB.prepare(s.sql).bind(...s.params));
      if (batch.raw) {
        if (stmts.length !== 1) throw new Error("raw() takes one statement");
        return Response.json({ ok: true, raw: await stmts[0].raw() });
      }
      return Response.json({ ok: true, results: await env.DB.batch(stmts) });
    } catch (e) {
      return Response.json({ ok: false, message: e instanceof Error ? e.message : String(e) });
    }
  },
};
