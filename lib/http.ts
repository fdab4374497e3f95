// The HTTP side of the Next.js app: response helpers and the one route frame every API route uses.
// Every error leaves through errorResponse (lib/backup), so the API has exactly one error shape.
import { z } from "zod";
import { checkAdminRequest, requireAdmin } from "./auth";
import { errorResponse } from "./backup";
import { BackupError, errorMessage } from "./errors";
import { getBindings, getCronConfig, type Bindings } from "./env";

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

// ---------------------------------------------------------------------------------------------
// The route frame: every API route is one of these, so auth, input parsing, bindings and error
// mapping live here once and a handler is just its library call.

type Body = Response | object;

interface RouteSpec<Q extends z.ZodTypeAny, P> {
  /** Strict schema of the query string; unknown parameters are refused. Omitted: the query is not read. */
  query?: Q;
  /** Parses the route's own path (e.g. a backup name) before the query, so a bad path is the error. */
  path?: (url: URL) => P;
  /** Dynamic segments that next-on-pages also passes as query parameters (see parseQuery). */
  routeParams?: string[];
}

export interface RouteContext<Q, P> {
  request: Request;
  url: URL;
  query: Q;
  path: P;
  bindings: Bindings;
}

const respond = (body: Body): Response => (body instanceof Response ? body : json(body));

function frame<Q extends z.ZodTypeAny, P, C>(
  name: string,
  spec: RouteSpec<Q, P>,
  authenticate: (request: Request) => Promise<C>,
  handler: (ctx: RouteContext<z.infer<Q>, P> & C) => Promise<Body>,
): (request: Request) => Promise<Response> {
  return async (request) => {
    try {
      const who = await authenticate(request);
      const url = new URL(request.url);
      const path = spec.path ? spec.path(url) : (undefined as P);
      const query = spec.query ? parseQuery(url, spec.query, spec.routeParams) : (undefined as z.infer<Q>);
      return respond(await handler({ request, url, query, path, bindings: getBindings(), ...who }));
    } catch (e) {
      return errorJson(e, name);
    }
  };
}

/** An admin route: a Clerk admin session (lib/auth.ts), then the strict query, then the handler. */
export function adminRoute<Q extends z.ZodTypeAny, P = undefined>(
  name: string,
  spec: RouteSpec<Q, P>,
  handler: (ctx: RouteContext<z.infer<Q>, P> & { actor: string }) => Promise<Body>,
): (request: Request) => Promise<Response> {
  const route = frame(name, spec, async (request) => {
    // Also made by the middleware; repeated here because not every spelling of a path meets it.
    checkAdminRequest(request);
    return { actor: await requireAdmin() };
  }, handler);
  return async (request) => withAdminHeaders(await route(request));
}

/**
 * Headers every admin answer carries, whoever produced it: never cached (it varies by who asks)
 * and never framed (clickjacking the buttons). next.config.js sets them for /admin pages too.
 */
export const ADMIN_HEADERS = {
  "cache-control": "no-store",
  vary: "Cookie, Authorization",
  "content-security-policy": "frame-ancestors 'none'",
  "x-frame-options": "DENY",
} as const;

export function withAdminHeaders(res: Response): Response {
  // A streamed download's headers may be immutable; copy into a new response then.
  let out = res;
  try {
    for (const [k, v] of Object.entries(ADMIN_HEADERS)) out.headers.set(k, v);
  } catch {
    out = new Response(res.body, res);
    for (const [k, v] of Object.entries(ADMIN_HEADERS)) out.headers.set(k, v);
  }
  return out;
}

/** A route for external schedulers: `Authorization: Bearer <CRON_SECRET>`, constant time, fails closed. */
export function cronRoute<Q extends z.ZodTypeAny>(
  name: string,
  spec: RouteSpec<Q, undefined>,
  handler: (ctx: RouteContext<z.infer<Q>, undefined>) => Promise<Body>,
): (request: Request) => Promise<Response> {
  return frame(name, spec, requireCronSecret, handler);
}

/**
 * An unauthenticated route whose every failure is answered by `fallback` (the reason goes to the
 * log only): a public endpoint never tells a stranger what went wrong.
 */
export function publicRoute(
  name: string,
  handler: (ctx: { request: Request; bindings: Bindings }) => Promise<Body>,
  fallback: () => Response,
): (request: Request) => Promise<Response> {
  return async (request) => {
    try {
      return respond(await handler({ request, bindings: getBindings() }));
    } catch (e) {
      console.error(`${name}:`, e);
      return fallback();
    }
  };
}

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
}

/**
 * Constant-time comparison of the presented and the configured secret: both are hashed first, so
 * the comparison always runs over 32 bytes whatever their lengths, and it never exits early.
 */
async function secretMatches(presented: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(presented), sha256(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

async function requireCronSecret(request: Request): Promise<Record<string, never>> {
  let cronSecret: string;
  try {
    ({ cronSecret } = getCronConfig());
  } catch (e) {
    // A stranger learns nothing about the configuration: the operator finds it in the log, the
    // caller gets the same 401 as for a wrong secret (with no secret configured, none is right).
    console.error(`cron route refused a call: ${errorMessage(e)}`);
    await secretMatches(request.headers.get("authorization") ?? "", "");
    throw new BackupError("UNAUTHORIZED", "missing or wrong cron secret");
  }
  const header = request.headers.get("authorization") ?? "";
  const m = /^Bearer (.+)$/.exec(header);
  // A missing or malformed header is still compared (against ""), so every refusal takes the same path.
  const ok = await secretMatches(m ? m[1] : "", cronSecret);
  if (!m || !ok) throw new BackupError("UNAUTHORIZED", "missing or wrong cron secret");
  return {};
}
