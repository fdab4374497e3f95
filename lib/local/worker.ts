// A local-only Worker that runs the backup library inside workerd — the runtime production uses —
// for the CLIs and the benchmark. It is never deployed: lib/local/runner.ts starts it in-process
// with wrangler against the local D1/R2 state and calls it; nothing else can reach it.
import { backupDatabase, backupResponse, errorResponse, listBackups, listResponse, runBackup } from "../backup";

interface Env {
  DB: D1Database;
  DOCUMENTS: R2Bucket;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (request.method === "POST" && url.pathname === "/backup") {
        const body = (await request.json().catch(() => ({}))) as { now?: string; dump?: Record<string, number> };
        const now = body.now ? new Date(body.now) : undefined;
        // Tuning knobs (tests, benchmark) go straight to the library; a plain run takes the lock
        // like every other entry point, so the CLI never collides with the nightly run.
        const { summary, manifest } = body.dump
          ? await backupDatabase({ db: env.DB, bucket: env.DOCUMENTS, trigger: "cli", now, dump: body.dump })
          : await runBackup({ db: env.DB, bucket: env.DOCUMENTS, trigger: "cli", now });
        return Response.json({ ...backupResponse(summary), manifest });
      }
      if (request.method === "GET" && url.pathname === "/list") {
        return Response.json(listResponse(await listBackups(env.DOCUMENTS)));
      }
      return Response.json({ success: false, error: { code: "NOT_FOUND", message: "no such local operation" } }, { status: 404 });
    } catch (e) {
      const { status, body } = errorResponse(e);
      // Local tool: show the real message of unexpected errors too.
      if (body.error.code === "INTERNAL") body.error.message = e instanceof Error ? e.message : String(e);
      return Response.json(body, { status });
    }
  },
};
