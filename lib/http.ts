// Response helpers for the Next.js routes and middleware: every error leaves through
// errorResponse (lib/backup/present.ts), so the API has exactly one error shape.
import { z } from "zod";
import { BackupError } from "./backup/errors";
import { errorResponse } from "./backup/present";

// Backup data and audit answers must never be cached by a browser or a CDN.
const NO_STORE = { "cache-control": "no-store" } as const;

export function json(body: unknown, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return Response.json(body, { status: init.status ?? 200, headers: { ...NO_STORE, ...init.headers } });
}

/** `{"success":false,"error":{code,message}}` with the code's status; unknown errors are logged, never sent. */
export function errorJson(e: unknown, where: string): Response {
  const { status, body } = errorResponse(e);
  if (body.error.code === "INTERNAL") {
    console.error(`${where}: unexpected error:`, e);
    // The library also raises INTERNAL itself, wrapping a runtime's message ("backup failed: …");
    // over HTTP that is as internal as any unknown error, so only the log carries it.
    body.error = { code: "INTERNAL", message: "internal error" };
  } else if (status >= 500) {
    console.error(`${where}: ${body.error.code}: ${body.error.message}`);
  }
  const headers: Record<string, string> = {};
  // RFC 9110: a 401 names the scheme it wants.
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="d1-backup"';
  return json(body, { status, headers });
}

/** Query parameters as a plain object, refusing repeats (`?dry_run=0&dry_run=1` is ambiguous). */
export function queryObject(url: URL): Record<string, string> | null {
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    if (Object.prototype.hasOwnProperty.call(out, k)) return null;
    out[k] = v;
  }
  return out;
}

/**
 * Parses a query object with a strict zod schema; unknown or bad parameters are INVALID_INPUT (400).
 * `routeParams` are dropped first: on Pages, next-on-pages hands a dynamic route its path segments
 * as query parameters too (`[name]` arrives as `?name=…`), which are not the caller's input.
 */
export function parseQuery<T extends z.ZodTypeAny>(url: URL, schema: T, routeParams: string[] = []): z.infer<T> {
  const query = queryObject(url);
  if (!query) throw new BackupError("INVALID_INPUT", "a query parameter is given more than once");
  for (const p of routeParams) {
    delete query[p];
    delete query[`nxtP${p}`]; // the prefixed form newer Next.js builds use
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join(".");
    throw new BackupError("INVALID_INPUT", `invalid query${where ? ` (${where})` : ""}: ${issue.message}`);
  }
  return parsed.data;
}

/** A yes/no query flag: 1/true/0/false only, so a typo never silently means "no". */
export const flag = z.enum(["1", "true", "0", "false"]).transform((v) => v === "1" || v === "true");
