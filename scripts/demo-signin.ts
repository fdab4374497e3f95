// `npm run demo`'s one-click sign-in, outside the app: a tiny HTTP server on 127.0.0.1 that sets
// the admin's session cookies for localhost (cookies ignore ports, so the app on $PORT gets them)
// and redirects to the dashboard. The token is an ordinary one from scripts/mint-token.ts that
// the app verifies against CLERK_JWT_KEY like any other; the app itself has no sign-in shortcut.
// It prints its link once the app answers, so the link comes last, after the build and wrangler.
// Exits when the process it serves (--parent, the demo's wrangler) is gone.
import http from "node:http";
import { parseCli } from "./cli-args";

const USAGE = `
tsx scripts/demo-signin.ts --app-port N --port N --parent PID   (token in D1B_DEMO_TOKEN)
  -h, --help  this text
`;

const values = parseCli("demo-signin", USAGE, { "app-port": { type: "string" }, port: { type: "string" }, parent: { type: "string" } });
const appPort = Number(values["app-port"]);
const port = Number(values.port);
const parent = Number(values.parent);
const token = process.env.D1B_DEMO_TOKEN ?? "";
if (!appPort || !port || !parent || !token) {
  console.error("demo-signin: --app-port, --port, --parent and D1B_DEMO_TOKEN are required");
  process.exit(2);
}
const app = `http://localhost:${appPort}`;

const server = http.createServer((req, res) => {
  if (req.url !== "/") {
    res.writeHead(404).end();
    return;
  }
  const uat = Math.floor(Date.now() / 1000) - 60;
  res.writeHead(303, {
    // HttpOnly: page scripts never see the token; Lax: sent on the redirect's top-level navigation.
    "set-cookie": [`__session=${token}; Path=/; HttpOnly; SameSite=Lax`, `__client_uat=${uat}; Path=/; SameSite=Lax`, `__clerk_db_jwt=dvb_local; Path=/; SameSite=Lax`],
    location: `${app}/admin/backups`,
    "cache-control": "no-store",
  });
  res.end();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

server.listen(port, "127.0.0.1", async () => {
  const watch = setInterval(() => {
    if (!alive(parent)) process.exit(0);
  }, 1000);
  watch.unref();
  // Wait for the app, so the link is the last thing printed and works when clicked.
  for (;;) {
    if (!alive(parent)) process.exit(0);
    const up = await fetch(`${app}/api/health/backup`).then(
      () => true,
      () => false,
    );
    if (up) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  process.stderr.write(`\n\x1b[1mSign in to the dashboard as the local admin (one click):\x1b[0m  http://localhost:${port}/\n\n`);
});
