// GET /api/admin/backup/status: backup health (ok / stale / failing / never, with the last good
// backup, the last run and the next scheduled run) and the run holding the lock, for admins.
// A static segment, so Next routes it here before app/api/admin/backup/[name].
import { z } from "zod";
import { requireAdmin } from "@/lib/auth";
import { getBackupStatus } from "@/lib/monitor";
import { getBindings } from "@/lib/env";
import { errorJson, json, parseQuery } from "@/lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const noQuery = z.object({}).strict();

export async function GET(request: Request): Promise<Response> {
  try {
    await requireAdmin();
    parseQuery(new URL(request.url), noQuery);
    const { db, bucket } = getBindings();
    return json({ success: true, ...(await getBackupStatus({ db, bucket })) });
  } catch (e) {
    return errorJson(e, "GET /api/admin/backup/status");
  }
}
