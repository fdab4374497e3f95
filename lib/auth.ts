// The one admin check, used by middleware.ts (first line of defence) and by every admin route
// (second line: a route stays closed even if the middleware matcher ever misses it).
//
// Admin means: a verified Clerk *session* token (not an API key / M2M / OAuth token) whose claims
// carry `metadata.role === "admin"`. Clerk puts public metadata into session tokens only when the
// instance's session token is customised (Clerk dashboard → Configure → Sessions → Customize
// session token) with:
//     { "metadata": "{{user.public_metadata}}" }
// and an admin's public metadata is `{ "role": "admin" }` (Users → user → Metadata → Public).
// There is no other way in: no environment flag, no development shortcut.
import { auth } from "@clerk/nextjs/server";
import { BackupError } from "./errors";
import { getClerkConfig } from "./env";

/** The parts of Clerk's auth object the check reads (what `auth()` and the middleware's auth() return). */
export interface AuthLike {
  tokenType?: string | null;
  userId?: string | null;
  sessionClaims?: Record<string, unknown> | null;
}

export type AdminCheck = { ok: true; userId: string } | { ok: false; error: BackupError };

export const ADMIN_ROLE = "admin";

export function roleOf(claims: Record<string, unknown> | null | undefined): string | null {
  const metadata = claims?.metadata;
  if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) return null;
  const role = (metadata as Record<string, unknown>).role;
  return typeof role === "string" ? role : null;
}

/** 401 without a verified session, 403 for a signed-in user who is not an admin. */
export function checkAdmin(a: AuthLike | null | undefined): AdminCheck {
  if (!a || a.tokenType !== "session_token" || typeof a.userId !== "string" || !a.userId) {
    return { ok: false, error: new BackupError("UNAUTHORIZED", "a valid Clerk session is required") };
  }
  if (roleOf(a.sessionClaims) !== ADMIN_ROLE) {
    return { ok: false, error: new BackupError("FORBIDDEN", "admin role required") };
  }
  return { ok: true, userId: a.userId };
}

/** For route handlers: the admin's Clerk user id, or a thrown UNAUTHORIZED/FORBIDDEN BackupError. */
export async function requireAdmin(): Promise<string> {
  // auth() trusts what clerkMiddleware verified because the middleware HMACs it with
  // CLERK_SECRET_KEY; with that key unset the HMAC would be forgeable, so check the config first.
  getClerkConfig();
  // If the middleware did not run for this path, auth() throws, which the route reports as a
  // 500: closed either way.
  const result = checkAdmin(await auth());
  if (!result.ok) throw result.error;
  return result.userId;
}

// ---------------------------------------------------------------------------------------------
// Request checks that need no Clerk call. The middleware makes them first; the route frame
// (lib/http.ts adminRoute) makes them again, because some spellings of a path (`//api/admin/…`
// with `RSC: 1`) reach a route handler without the middleware having run.

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function hasSessionCookie(request: Request): boolean {
  const cookie = request.headers.get("cookie") ?? "";
  return cookie.split(";").some((part) => {
    const name = part.split("=", 1)[0].trim();
    return name === "__session" || name.startsWith("__session_");
  });
}

/**
 * Cross-site request forgery: a browser sends the admin's session cookie with any request to the
 * portal, including a form or fetch another site starts. So a request that changes something
 * (POST, DELETE) and authenticates by cookie must come from the portal's own pages: the browser
 * says so in Sec-Fetch-Site, or (older browsers) in Origin. A Bearer token cannot be sent by
 * another site, so API clients (curl, scripts) are not affected.
 */
export function crossSiteProblem(request: Request): BackupError | null {
  if (SAFE_METHODS.has(request.method) || request.headers.get("authorization") !== null) return null;
  // No session cookie: nothing to forge with; Clerk answers 401 as for any stranger.
  if (!hasSessionCookie(request)) return null;
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  const sameOrigin = site !== null ? site === "same-origin" : origin !== null && origin === new URL(request.url).origin;
  return sameOrigin ? null : new BackupError("FORBIDDEN", "cross-site request refused: send a Bearer token, or use the admin pages of this portal");
}

const MACHINE_TOKEN_PREFIXES = ["ak_", "mt_", "oat_"];
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Only a session JWT can make someone an admin. Opaque machine tokens (API keys, M2M, OAuth) would
 * make Clerk call its Backend API to look them up: a network round trip chosen by the caller.
 * They, and anything that is not a JWT at all, are refused before Clerk sees them.
 */
export function bearerProblem(request: Request): BackupError | null {
  const header = request.headers.get("authorization");
  if (header === null) return null; // the session cookie may still authenticate
  const m = /^Bearer ([^\s]+)$/.exec(header.trim());
  if (!m || !JWT_RE.test(m[1]) || MACHINE_TOKEN_PREFIXES.some((p) => m[1].startsWith(p))) {
    return new BackupError("UNAUTHORIZED", "a valid Clerk session is required");
  }
  return null;
}

/**
 * Everything decidable from the request alone, in the order the middleware applies it: the Clerk
 * config for this request's host (CLERK_AUTHORIZED_PARTIES when deployed), token shape, CSRF.
 */
export function checkAdminRequest(request: Request): void {
  getClerkConfig(new URL(request.url));
  const problem = bearerProblem(request) ?? crossSiteProblem(request);
  if (problem) throw problem;
}
