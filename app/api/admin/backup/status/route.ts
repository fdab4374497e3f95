// GET /api/admin/backup/status: backup health (ok / stale / failing / never, with the last good
// backup, the last run and the next scheduled run) and the run holding the lock, for admins.
// A static segment, so Next routes it here before app/api/admin/backup/[name].
import { z } from "zod";
import { getBackupStatus } from "../../../../../lib/monitor";
import { isOffsiteConfigured } from "../../../../../lib/env";
import { adminRoute } from "../../../../../lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

export const GET = adminRoute("GET /api/admin/backup/status", { query: z.object({}).strict() }, async ({ bindings }) => ({
  success: true,
  ...(await getBackupStatus({ ...bindings, offsiteConfigured: isOffsiteConfigured() })),
}));
