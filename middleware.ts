// Clerk authentication for the admin surface: /api/admin/* (JSON API) and /admin/* (pages).
// Session tokens are verified locally with CLERK_JWT_KEY (the instance's PEM public key), so no
// request ever waits on Clerk's servers to decide who is calling; CLERK_AUTHORIZED_PARTIES pins
// the token's azp to the portal's own origins (required when deployed: lib/env.ts isDeployed). The admin rule itself lives in
// lib/auth.ts, which every admin route applies again. /api/cron/* is not matched: it has its own
// credential (CRON_SECRET). There is deliberately no development or test bypass of any kind.
import { clerkMiddleware } from "@clerk/nextjs/server";
import type { NextFetchEvent, NextRequest } from "next/server";
import { checkAdmin, checkAdminRequest } from "./lib/auth";
import { BackupError } from "./lib/errors";
import { getClerkConfig } from "./lib/env";
import { errorJson, withAdminHeaders } from "./lib/http";

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
  (req) => {
    const c = getClerkConfig(req.nextUrl);
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

export default async function middleware(req: NextRequest, event: NextFetchEvent): Promise<Response> {
  // Pages do not apply next.config.js headers() to middleware answers, so they are set here too
  // (refusals and redirects included; an immutable redirect is copied first).
  return withAdminHeaders(await guard(req, event));
}

async function guard(req: NextRequest, event: NextFetchEvent): Promise<Response> {
  try {
    // Config first: a missing CLERK_JWT_KEY must be a loud 500, never a fall-back to the network.
    // (On Pages, next-on-pages treats any 500 from middleware as a crash and serves its own error
    // page instead of this JSON; the status stays 500 and the message is in the logs.)
    // The same checks run again in the route frame (lib/http.ts), for paths this matcher misses.
    checkAdminRequest(req);
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
