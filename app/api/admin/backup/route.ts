// Admin backup API: POST = back up now, GET = list, DELETE = retention cleanup (?dry_run=1 previews).
import { z } from "zod";
import { backupResponse, cleanupResponse, listBackups, listResponse, runBackup, runCleanup } from "../../../../lib/backup";
import { getLeaseTtlMs, getRetentionPolicy, getRunSettings } from "../../../../lib/env";
import { adminRoute, flag } from "../../../../lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const noQuery = z.object({}).strict();
// Strict: `?dryrun=1` (a typo) must be refused, not run as a real, deleting cleanup.
const deleteQuery = z.object({ dry_run: flag.optional() }).strict();

export const POST = adminRoute("POST /api/admin/backup", { query: noQuery }, async ({ actor, bindings }) => {
  const { summary } = await runBackup({ ...bindings, actor, trigger: "manual", ...(await getRunSettings()) });
  return backupResponse(summary);
});

export const GET = adminRoute("GET /api/admin/backup", { query: noQuery }, async ({ bindings }) =>
  listResponse(await listBackups(bindings.bucket)),
);

export const DELETE = adminRoute("DELETE /api/admin/backup", { query: deleteQuery }, async ({ actor, bindings, query }) => {
  const result = await runCleanup({ ...bindings, actor, dryRun: query.dry_run ?? false, trigger: "manual", leaseTtlMs: getLeaseTtlMs(), policy: getRetentionPolicy() });
  return { success: true, ...cleanupResponse(result) };
});
