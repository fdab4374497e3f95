// GET /api/health/backup: for uptime monitors, no authentication. It says only whether backups
// are healthy and how old the newest one is: {"status":"ok"|"stale","age_hours":N|null}, HTTP 200
// when ok and 503 otherwise, so a monitor that only looks at the status code works too. Never a
// key, name, size, table or error text: a stranger learns nothing about the database. Not under
// /api/admin, so the Clerk middleware does not match it.
import { getPublicHealth } from "@/lib/monitor";
import { getBindings } from "@/lib/env";
import { json } from "@/lib/http";

export const runtime = "edge";
export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  try {
    const { db, bucket } = getBindings();
    const health = await getPublicHealth({ db, bucket });
    return json(health, { status: health.status === "ok" ? 200 : 503 });
  } catch (e) {
    // Health that cannot be read is not healthy; the reason goes to the log only.
    console.error("GET /api/health/backup:", e);
    return json({ status: "stale", age_hours: null }, { status: 503 });
  }
}
