import Link from "next/link";

// Static: served from Pages' asset store, no Worker invocation.
export default function Home() {
  return (
    <main>
      <h1>Tech Support Client Portal</h1>
      <p>Client tickets, documents and invoices live in Cloudflare D1 and R2. The database is backed up every night to R2.</p>
      <ul>
        <li>
          <Link href="/admin/backups">Backups dashboard</Link>: health, backups, “Back up now” and cleanup (admins only).
        </li>
        <li>
          <Link href="/docs/backup-api">Backup API</Link>: create, list, download and clean up database backups (admins only).
        </li>
      </ul>
    </main>
  );
}
