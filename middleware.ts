// Clerk authentication for the admin surface: /api/admin/* (JSON API) and /admin/* (pages).
// Session tokens are verified locally with CLERK_JWT_KEY (the instance's PEM public key), so no
// request ever waits on Clerk's servers to decide who is calling; CLERK_AUTHORIZED_PARTIES, when
// set, also pins the token's azp to the portal's own origins. The admin rule itself lives in
// lib/auth.ts, which every admin route applies again. /api/cron/* is not matched: it has its own
// credential (CRON_SECRET). There is deliberately no development or test bypass of any kind.
import { clerkMiddleware } from "@clerk/nextjs/server";
import type { NextFetchEvent, NextRequest } from "next/server";
import { checkAdmin } from "./lib/auth";
import { BackupError } from "./lib/errors";
import { getClerkConfig } from "./lib/env";
import { errorJson } from "./lib/http";

const isApi = (req: NextRequest) => req.nextUrl.pathname.startsWith("/api/");

const clerk = clerkMiddleware(
  async (auth, req) => {
    const result = checkAdmin(await auth());
    if (result.ok) return; // on to the route, which checks again
    if (isApi(req)) return errorJson(result.error, "middleware");
    // Pages: a stranger is sent to sign in; a signed-in non-admin is refused.
    if (result.error.code === "UNAUTHORIZED") return (await auth()).redirectToSignIn();
    return forbiddenPage();
  },
  // Resolved per request from the validated env (lib/env.ts). Only public material is passed here:
  // the secret key stays in CLERK_SECRET_KEY, where Clerk reads it itself (passing it at runtime
  // would also require CLERK_ENCRYPTION_KEY).
  () => {
    const c = getClerkConfig();
    return {
      publishableKey: c.publishableKey,
      jwtKey: c.jwtKey,
      ...(c.authorizedParties.length ? { authorizedParties: c.authorizedParties } : {}),
    };
  },
);

/** The page a signed-in non-admin gets for /admin/*: a real page, not a bare error string. */
function forbiddenPage(): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>403 Forbidden</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem">
<h1>403 Forbidden</h1><p>You are signed in, but this page is for portal administrators (admin role) only.</p>
<p><a href="/">Back to the portal</a></p></body></html>`;
  return new Response(html, { status: 403, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Cross-site request forgery: a browser sends the admin's session cookie with any request to the
 * portal, including a form or fetch another site starts. So a request that changes something
 * (POST, DELETE) and authenticates by cookie must come from the portal's own pages: the browser
 * says so in Sec-Fetch-Site, or (older browsers) in Origin. A Bearer token cannot be sent by
 * another site, so API clients (curl, scripts) are not affected.
 */
function crossSiteProblem(req: NextRequest): BackupError | null {
  if (SAFE_METHODS.has(req.method) || req.headers.get("authorization") !== null) return null;
  // No session cookie: nothing to forge with; Clerk answers 401 as for any stranger.
  if (!req.cookies.getAll().some((c) => c.name === "__session" || c.name.startsWith("__session_"))) return null;
  const site = req.headers.get("sec-fetch-site");
  const origin = req.headers.get("origin");
  const sameOrigin = site !== null ? site === "same-origin" : origin !== null && origin === req.nextUrl.origin;
  return sameOrigin ? null : new BackupError("FORBIDDEN", "cross-site request refused: send a Bearer token, or use the admin pages of this portal");
}

const MACHINE_TOKEN_PREFIXES = ["ak_", "mt_", "oat_"];
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Only a session JWT can make someone an admin. Opaque machine tokens (API keys, M2M, OAuth) would
 * make Clerk call its Backend API to look them up: a network round trip chosen by the caller.
 * They, and anything that is not a JWT at all, are refused before Clerk sees them.
 */
function bearerProblem(req: NextRequest): BackupError | null {
  const header = req.headers.get("authorization");
  if (header === null) return null; // the session cookie may still authenticate
  const m = /^Bearer ([^\s]+)$/.exec(header.trim());
  if (!m || !JWT_RE.test(m[1]) || MACHINE_TOKEN_PREFIXES.some((p) => m[1].startsWith(p))) {
    return new BackupError("UNAUTHORIZED", "a valid Clerk session is required");
  }
  return null;
}

export default async function middleware(req: NextRequest, event: NextFetchEvent): Promise<Response> {
  try {
    // Config first: a missing CLERK_JWT_KEY must be a loud 500, never a fall-back to the network.
    // (On Pages, next-on-pages treats any 500 from middleware as a crash and serves its own error
    // page instead of this JSON; the status stays 500 and the message is in the logs.)
    getClerkConfig();
    const problem = bearerProblem(req) ?? crossSiteProblem(req);
    if (problem) return errorJson(problem, "middleware");
    const res = await clerk(req, event);
    // Clerk answers some browser navigations with a redirect to its handshake/sign-in pages. An API
    // client needs a status it can act on, so for /api/* any redirect becomes a plain 401.
    if (isApi(req) && res && res.status >= 300 && res.status < 400) {
      return errorJson(new BackupError("UNAUTHORIZED", "a valid Clerk session is required"), "middleware");
    }
    return res ?? new Response(null, { status: 500 });
  } catch (e) {
    return errorJson(e, "middleware");
  }
}

export const config = {
  matcher: ["/api/admin/:path*", "/admin/:path*"],
};
