// GET /api/health/backup: for uptime monitors, no authentication. It says only whether backups
// are healthy and how old the newest one is: {"status":"ok"|"attention"|"stale","age_hours":N|null},
// HTTP 200 when ok and 503 otherwise (amber included: the monitor's job is to send someone to the
// dashboard), so a monitor that only looks at the status code works too. Never a key, name, size,
// table or error text: a stranger learns nothing about the database. Answered from memory for
// PUBLIC_HEALTH_CACHE_SECONDS (30 s), so anonymous calls cannot each cost an R2 listing and D1
// reads. Not under /api/admin, so the Clerk middleware does not match it.
import { publicHealthCache } from "../../../../lib/monitor";
import { getPublicHealthCacheMs, isOffsiteConfigured } from "../../../../lib/env";
import { json, publicRoute } from "../../../../lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const cachedHealth = publicHealthCache();

export const GET = publicRoute(
  "GET /api/health/backup",
  async ({ bindings }) => {
    const health = await cachedHealth({ ...bindings, offsiteConfigured: isOffsiteConfigured() }, getPublicHealthCacheMs());
    return json(health, { status: health.status === "ok" ? 200 : 503 });
  },
  // Health that cannot be read is not healthy.
  () => json({ status: "stale", age_hours: null }, { status: 503 }),
);
