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
