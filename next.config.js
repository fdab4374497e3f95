// @ts-check
// Next.js config for the portal on Cloudflare Pages (built by @cloudflare/next-on-pages).
const path = require("node:path");
const { PHASE_DEVELOPMENT_SERVER } = require("next/constants");

/** @type {import("next").NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // The repo holds more than the app (CLIs, tests, the cron Worker); type-checking is
  // `npm run typecheck` over all of it (CI runs it), so the build does not type-check it again.
  // No ESLint config in this repo either.
  // next build/dev rewrite the tsconfig they use (adding .next/types and reformatting it); this
  // one is theirs, so the project's tsconfig.json stays as written.
  typescript: { ignoreBuildErrors: true, tsconfigPath: "tsconfig.next.json" },
  eslint: { ignoreDuringBuilds: true },
  // Admin pages and API answers depend on who asks and hold buttons: never cached, never framed.
  // The admin route frame (lib/http.ts ADMIN_HEADERS) sets the same on every API answer, for
  // spellings of a path these patterns do not match.
  async headers() {
    const admin = [
      { key: "Cache-Control", value: "no-store" },
      { key: "Vary", value: "Cookie, Authorization" },
      { key: "Content-Security-Policy", value: "frame-ancestors 'none'" },
      { key: "X-Frame-Options", value: "DENY" },
    ];
    return [
      { source: "/admin", headers: admin },
      { source: "/admin/:path*", headers: admin },
      { source: "/api/admin/:path*", headers: admin },
    ];
  },
};

/**
 * Where `next dev` keeps local D1/R2 state. The default is wrangler's own (.wrangler/state), so the
 * dev server sees exactly what `wrangler d1 execute --local`, `npm run seed` and `npm run backup`
 * wrote; D1B_PERSIST_TO points it elsewhere (scripts/dev.sh passes the same value to wrangler).
 */
function persistDir() {
  const configured = process.env.D1B_PERSIST_TO;
  return configured ? path.resolve(process.cwd(), configured) : path.join(__dirname, ".wrangler", "state");
}

module.exports = async (/** @type {string} */ phase) => {
  if (phase === PHASE_DEVELOPMENT_SERVER) {
    // Gives `next dev` the real local bindings (getRequestContext().env.DB / DOCUMENTS, vars from
    // .dev.vars) through wrangler's getPlatformProxy. Production builds never run this: on Pages
    // the bindings come from the platform. Limit: Next's dev sandbox for edge routes has no
    // CompressionStream, so creating a backup fails under next dev (listing, manifests and
    // downloads work). The production build in workerd has it: `npm run demo`, the API tests.
    const { setupDevPlatform } = require("@cloudflare/next-on-pages/next-dev");
    // wrangler's --persist-to DIR keeps its data in DIR/v3; getPlatformProxy takes that v3 directory.
    await setupDevPlatform({
      configPath: path.join(__dirname, "wrangler.toml"),
      persist: { path: path.join(persistDir(), "v3") },
    });
  }
  return nextConfig;
};
