// Admin backup API: POST = back up now, GET = list, DELETE = retention cleanup (?dry_run=1 previews).
// Thin by design: admin check, input parsing, one library call, the shared JSON shapes.
import { z } from "zod";
import { requireAdmin } from "@/lib/auth";
import { backupResponse, cleanupResponse, listResponse } from "@/lib/backup/present";
import { listBackups } from "@/lib/backup/list";
import { runBackup, runCleanup } from "@/lib/backup/run";
import { getBindings } from "@/lib/env";
import { errorJson, flag, json, parseQuery } from "@/lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const noQuery = z.object({}).strict();
// Strict: `?dryrun=1` (a typo) must be refused, not run as a real, deleting cleanup.
const deleteQuery = z.object({ dry_run: flag.optional() }).strict();

export async function POST(request: Request): Promise<Response> {
  try {
    const actor = await requireAdmin();
    parseQuery(new URL(request.url), noQuery);
    const { db, bucket } = getBindings();
    const { summary } = await runBackup({ db, bucket, actor, trigger: "manual" });
    return json(backupResponse(summary));
  } catch (e) {
    return errorJson(e, "POST /api/admin/backup");
  }
}

export async function GET(request: Request): Promise<Response> {
  try {
    await requireAdmin();
    parseQuery(new URL(request.url), noQuery);
    const { bucket } = getBindings();
    return json(listResponse(await listBackups(bucket)));
  } catch (e) {
    return errorJson(e, "GET /api/admin/backup");
  }
}

export async function DELETE(request: Request): Promise<Response> {
  try {
    const actor = await requireAdmin();
    const { dry_run } = parseQuery(new URL(request.url), deleteQuery);
    const { db, bucket } = getBindings();
    const result = await runCleanup({ db, bucket, actor, dryRun: dry_run ?? false, trigger: "manual" });
    return json({ success: true, ...cleanupResponse(result) });
  } catch (e) {
    return errorJson(e, "DELETE /api/admin/backup");
  }
}
