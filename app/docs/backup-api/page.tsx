import Link from "next/link";

const code = { background: "#f4f4f4", padding: "0.1rem 0.3rem", borderRadius: 3 } as const;
const pre = { background: "#f4f4f4", padding: "0.75rem", overflowX: "auto" } as const;

// Static reference for the routes under app/api. Keep it in step with those handlers.
export default function BackupApiDocs() {
  return (
    <main>
      <p>
        <Link href="/">← Portal</Link>
      </p>
      <h1>Backup API</h1>
      <p>
        Admin routes need a Clerk session token whose claims carry <code style={code}>metadata.role = &quot;admin&quot;</code>, sent as{" "}
        <code style={code}>Authorization: Bearer &lt;token&gt;</code> (or the Clerk session cookie). Without a valid session: 401; signed in
        but not an admin: 403. Every error is <code style={code}>{'{"success":false,"error":{"code":"…","message":"…"}}'}</code>.
      </p>
      <h2>Admin</h2>
      <table>
        <tbody>
          <tr>
            <td><code style={code}>POST /api/admin/backup</code></td>
            <td>Back up the database now. 409 BACKUP_IN_PROGRESS (with <code style={code}>details.startedAt</code>) while another run holds the lock.</td>
          </tr>
          <tr>
            <td><code style={code}>GET /api/admin/backup</code></td>
            <td>Complete backups, newest first, plus incomplete leftovers.</td>
          </tr>
          <tr>
            <td><code style={code}>DELETE /api/admin/backup[?dry_run=1]</code></td>
            <td>Apply retention (BACKUP_RETENTION, default the newest backup of each of the last 30 days, 12 ISO weeks and 24 months; the newest 7 always kept); the answer lists each backup's decision and reasons. With <code style={code}>dry_run=1</code> nothing is deleted.</td>
          </tr>
          <tr>
            <td><code style={code}>GET /api/admin/backup/status</code></td>
            <td>
              Health: <code style={code}>ok</code>, <code style={code}>stale</code> (newest backup over 26 h old),{" "}
              <code style={code}>failing</code> (the last run failed) or <code style={code}>never</code>; the last good backup, the last run, the
              next scheduled run, and the run holding the lock.
            </td>
          </tr>
          <tr>
            <td><code style={code}>GET /api/admin/backup/&lt;name&gt;</code></td>
            <td>
              The manifest of one backup, e.g. <code style={code}>database-2026-01-31-02-00-00</code>.
            </td>
          </tr>
          <tr>
            <td><code style={code}>GET /api/admin/backup/&lt;name&gt;?download=1</code></td>
            <td>The gzipped SQL dump (restore into an empty database with <code style={code}>wrangler d1 execute --file</code>).</td>
          </tr>
        </tbody>
      </table>
      <h2>Dashboard and monitoring</h2>
      <p>
        <Link href="/admin/backups">/admin/backups</Link> (admins): health, backups, “Back up now”, cleanup with a preview, activity, size chart.{" "}
        <code style={code}>GET /api/health/backup</code> needs no login and says only{" "}
        <code style={code}>{'{"status":"ok"|"stale","age_hours":N}'}</code>, HTTP 200 when ok and 503 otherwise: point an uptime monitor at it.
      </p>
      <h2>Cron</h2>
      <p>
        <code style={code}>GET /api/cron/backup</code> with <code style={code}>Authorization: Bearer $CRON_SECRET</code>: backup, then retention.
        For external schedulers; the nightly run on Cloudflare is the companion cron Worker.
      </p>
      <h2>Example</h2>
      <pre style={pre}>{`curl -X POST -H "Authorization: Bearer $TOKEN" https://<portal>/api/admin/backup
curl -H "Authorization: Bearer $TOKEN" https://<portal>/api/admin/backup
curl -OJ -H "Authorization: Bearer $TOKEN" "https://<portal>/api/admin/backup/database-2026-01-31-02-00-00?download=1"`}</pre>
    </main>
  );
}
