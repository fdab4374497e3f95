// GET /api/health/backup: for uptime monitors, no authentication. It says only whether backups
// are healthy and how old the newest one is: {"status":"ok"|"stale","age_hours":N|null}, HTTP 200
// when ok and 503 otherwise, so a monitor that only looks at the status code works too. Never a
// key, name, size, table or error text: a stranger learns nothing about the database. Not under
// /api/admin, so the Clerk middleware does not match it.
import { getPublicHealth } from "../../../../lib/monitor";
import { json, publicRoute } from "../../../../lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

export const GET = publicRoute(
  "GET /api/health/backup",
  async ({ bindings }) => {
    const health = await getPublicHealth(bindings);
    return json(health, { status: health.status === "ok" ? 200 : 503 });
  },
  // Health that cannot be read is not healthy.
  () => json({ status: "stale", age_hours: null }, { status: 503 }),
);
