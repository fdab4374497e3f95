// /admin/backups: the admins' backup dashboard. Server-rendered on every request (edge runtime, the
// same bindings as the API) and protected by the middleware (Clerk admin); it checks the admin
// rule again itself. One library call (getDashboard) gathers what it shows; the two buttons are
// client components calling the admin API (actions.tsx).
import Link from "next/link";
import { z } from "zod";
import { requireAdmin } from "../../../lib/auth";
import { activitySummary, BackupError, errorResponse, formatBytes } from "../../../lib/backup";
import { getBindings, isOffsiteConfigured } from "../../../lib/env";
import { DATABASE_NAME } from "../../../lib/names";
import { type BackupHealth, type Dashboard, getDashboard, type RtoPoint, type SizePoint } from "../../../lib/monitor";
import { BackupNowButton, CleanupButton, CopyButton } from "./actions";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const ACTIVITY_PAGE_SIZE = 20;

const searchSchema = z.object({
  activity_offset: z.string().regex(/^\d{1,9}$/, "activity_offset must be a whole number").optional(),
  // The backup whose restore commands are shown open (a link from the restore guide or a colleague).
  restore: z.string().regex(/^database-\d{4}(-\d{2}){5}$/, "restore must be a backup name like database-2026-01-15-02-00-00").optional(),
});

const cell = { padding: "0.3rem 0.5rem", borderBottom: "1px solid #e0e0e0", textAlign: "left", verticalAlign: "top" } as const;
const num = { ...cell, textAlign: "right", fontVariantNumeric: "tabular-nums" } as const;
const section = { margin: "2rem 0" } as const;

const HEALTH_LOOK: Record<BackupHealth["status"], { label: string; color: string; background: string }> = {
  ok: { label: "Healthy", color: "#1b5e20", background: "#e8f5e9" },
  stale: { label: "Stale: backups are not being made", color: "#b71c1c", background: "#fdecea" },
  attention: { label: "Needs attention", color: "#8a5300", background: "#fff4e5" },
  failing: { label: "Failing: the last backup run failed or a backup is damaged", color: "#b71c1c", background: "#fdecea" },
  never: { label: "No backup exists", color: "#b71c1c", background: "#fdecea" },
};

/** What each logged action means, in words; the raw action stays in the cell's title. */
const ACTION_LABEL: Record<string, string> = {
  database_backup_created: "Backup created",
  database_backup_failed: "Backup failed",
  scheduled_backup_completed: "Nightly backup done",
  scheduled_backup_failed: "Nightly backup failed",
  backup_cleanup_completed: "Old backups cleaned up",
  backup_cleanup_failed: "Cleanup failed",
  restoration_test_completed: "Restoration test passed",
  restoration_test_failed: "Restoration test failed",
  backup_alert_sent: "Alert sent",
  backup_alert_failed: "Alert not delivered",
  restore_drill_completed: "Restore drill passed",
  restore_drill_failed: "Restore drill FAILED",
  restore_drill_skipped: "Restore drill skipped",
};

// Below 640 px each table row becomes a stacked card, each cell labelled from data-label, so a
// phone never scrolls sideways. Inline styles cannot hold media queries, hence this one sheet.
const PHONE_CSS = `
@media (max-width: 640px) {
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: auto; }
  table.stack thead { display: none; }
  table.stack > tbody > tr { border: 1px solid #e0e0e0; border-radius: 6px; margin: 0 0 0.6rem; padding: 0.3rem 0; }
  table.stack > tbody > tr > td { border-bottom: none !important; text-align: left !important; }
  table.stack > tbody > tr > td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; color: #555; }
  main { padding: 0 0.25rem; }
}
main { overflow-wrap: anywhere; }
`;

function utc(iso: string): string {
  return `${iso.slice(0, 19).replace("T", " ")} UTC`;
}

function age(hours: number): string {
  if (hours < 1) return `${Math.round(hours * 60)} min`;
  if (hours < 48) return `${hours.toFixed(1)} h`;
  return `${Math.floor(hours / 24)} d ${Math.round(hours % 24)} h`;
}

function Health({ health }: { health: BackupHealth }) {
  const look = HEALTH_LOOK[health.status];
  const last = health.lastSuccess;
  return (
    <section
      data-testid="health"
      data-status={health.status}
      style={{ border: `2px solid ${look.color}`, background: look.background, borderRadius: 8, padding: "0.8rem 1rem" }}
    >
      <h2 style={{ margin: 0, color: look.color }} data-testid="health-status">
        {look.label}
      </h2>
      <p style={{ margin: "0.3rem 0 0.6rem" }}>{health.summary}.</p>
      <dl style={{ display: "grid", gridTemplateColumns: "max-content 1fr", gap: "0.2rem 1rem", margin: 0 }}>
        <dt>Last successful backup</dt>
        <dd style={{ margin: 0 }} data-testid="health-last">
          {last ? (
            <>
              {age(last.ageHours)} ago ({utc(last.createdAt)}): {formatBytes(last.size)}, {last.tables} tables, {last.rows} rows
            </>
          ) : (
            "none"
          )}
        </dd>
        <dt>Last run</dt>
        <dd style={{ margin: 0 }} data-testid="health-last-run">
          {health.lastRun
            ? `${health.lastRun.ok ? "succeeded" : "FAILED"} at ${utc(health.lastRun.at)}${health.lastRun.reason ? `: ${health.lastRun.reason}` : ""}`
            : "none logged"}
        </dd>
        <dt>Next scheduled run</dt>
        <dd style={{ margin: 0 }} data-testid="health-next">
          {utc(health.nextScheduledRun)} (daily at 02:00 UTC)
        </dd>
        <dt>Stored</dt>
        <dd style={{ margin: 0 }}>
          {health.backupsCount} complete backups, {formatBytes(health.totalSize)}
          {health.incompleteCount ? `; ${health.incompleteCount} incomplete leftovers (${formatBytes(health.incompleteSize)})` : ""}
        </dd>
      </dl>
    </section>
  );
}

interface Bar {
  id: string;
  date: string;
  value: number;
  title: string;
}

/** Bars over the last 30 days, one per point, scaled to the largest; the first and last dates below. */
function BarChart(props: { testId: string; label: string; bars: Bar[]; height: number; fill: string; format: (v: number) => string }) {
  const { bars, height, format } = props;
  const width = 640;
  const pad = { left: 56, right: 8, top: 8, bottom: 22 };
  const max = Math.max(...bars.map((b) => b.value));
  const slot = (width - pad.left - pad.right) / bars.length;
  const barW = Math.max(1, Math.min(24, slot * 0.8));
  const plotH = height - pad.top - pad.bottom;
  return (
    <svg
      data-testid={props.testId}
      role="img"
      aria-label={props.label}
      viewBox={`0 0 ${width} ${height}`}
      style={{ width: "100%", maxWidth: width, height: "auto", background: "#fafafa", border: "1px solid #e0e0e0", borderRadius: 6 }}
    >
      <text x={pad.left - 6} y={pad.top + 10} textAnchor="end" fontSize="11" fill="#555">
        {format(max)}
      </text>
      <text x={pad.left - 6} y={height - pad.bottom} textAnchor="end" fontSize="11" fill="#555">
        0
      </text>
      <line x1={pad.left} y1={height - pad.bottom} x2={width - pad.right} y2={height - pad.bottom} stroke="#999" />
      {bars.map((b, i) => {
        const h = max > 0 ? Math.max(1, (b.value / max) * plotH) : 1;
        const x = pad.left + i * slot + (slot - barW) / 2;
        return (
          <rect key={b.id} x={x} y={height - pad.bottom - h} width={barW} height={h} fill={props.fill}>
            <title>{b.title}</title>
          </rect>
        );
      })}
      <text x={pad.left} y={height - 6} fontSize="11" fill="#555">
        {bars[0].date}
      </text>
      <text x={width - pad.right} y={height - 6} textAnchor="end" fontSize="11" fill="#555">
        {bars[bars.length - 1].date}
      </text>
    </svg>
  );
}

/** Backup size per backup over the last 30 days, as bars: a change in size is a change in data. */
function SizeChart({ points }: { points: SizePoint[] }) {
  if (points.length === 0) return <p data-testid="size-chart-empty">No backups in the last 30 days.</p>;
  const max = Math.max(...points.map((p) => p.size));
  return (
    <BarChart
      testId="size-chart"
      label={`Backup size over the last 30 days: ${points.length} backups, largest ${formatBytes(max)}`}
      bars={points.map((p) => ({ id: p.key, date: p.date, value: p.size, title: `${p.key}: ${formatBytes(p.size)}` }))}
      height={160}
      fill="#1976d2"
      format={formatBytes}
    />
  );
}

/** Replay time of each passed restore drill over the last 30 days: the RTO the drills measured. */
function RtoChart({ points }: { points: RtoPoint[] }) {
  if (points.length === 0) return <p data-testid="rto-chart-empty">No passed restore drill in the last 30 days.</p>;
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const max = Math.max(...points.map((p) => p.replayMs));
  return (
    <BarChart
      testId="rto-chart"
      label={`Restore time of the drills over the last 30 days: ${points.length} drills, longest ${secs(max)}`}
      bars={points.map((p, i) => ({ id: `${p.at}-${i}`, date: p.date, value: p.replayMs, title: `${p.key ?? "?"}: restored in ${secs(p.replayMs)} (${p.at})` }))}
      height={120}
      fill="#2e7d32"
      format={secs}
    />
  );
}

/** ✓ proven / ✗ what differed / skipped / – never drilled. */
function DrillCell({ drill }: { drill: Dashboard["backups"][number]["drill"] }) {
  if (!drill) return <span title="no restore drill of this backup">–</span>;
  if (drill.outcome === "completed") {
    return (
      <span style={{ color: "#1b5e20" }} title={`restore drill passed at ${drill.at}`}>
        ✓ proven{drill.replayMs !== undefined ? ` (${(drill.replayMs / 1000).toFixed(1)} s)` : ""}
      </span>
    );
  }
  if (drill.outcome === "failed") return <span style={{ color: "#b71c1c" }}>✗ {drill.reason ?? "failed"}</span>;
  return <span style={{ color: "#8a5300" }}>skipped: {drill.reason ?? "see activity"}</span>;
}

/**
 * The commands of BACKUP_RESTORATION.md for this backup, ready to paste: verify, restore into a new
 * database, and fetch the files with stock wrangler. Shown most of all when D1 is gone.
 */
export function restoreCommands(name: string, encrypted = false): { label: string; command: string }[] {
  const restored = `${DATABASE_NAME}-restored`;
  // An encrypted backup needs the age identity, which lives only with the operator (BACKUP_SETUP.md).
  const identity = encrypted ? " --identity age-key.txt" : "";
  const file = `${name}.sql.gz${encrypted ? ".age" : ""}`;
  return [
    { label: "Verify (dry run, changes nothing)", command: `npm run restore -- ${name} --remote --database ${restored}${identity} --dry-run` },
    { label: "Create an empty database to restore into", command: `npx wrangler d1 create ${restored}` },
    { label: "Restore into it", command: `npm run restore -- ${name} --remote --database ${restored}${identity}` },
    { label: "Or fetch the files with wrangler alone", command: `npx wrangler r2 object get tech-support-documents/backups/${file} --remote --file ${file}` },
  ];
}

function RestoreCommands({ name, open, encrypted }: { name: string; open: boolean; encrypted: boolean }) {
  return (
    <details open={open} data-testid="restore-commands">
      <summary>Restore commands</summary>
      <p style={{ margin: "0.3rem 0", fontSize: "0.85rem" }}>
        From a checkout of this repository, logged in with <code>npx wrangler login</code> (BACKUP_RESTORATION.md, sections 1–2).
      </p>
      <ol style={{ margin: 0, paddingLeft: "1.2rem", fontSize: "0.85rem" }}>
        {restoreCommands(name, encrypted).map((c) => (
          <li key={c.command} style={{ marginBottom: "0.4rem" }}>
            {c.label}
            <div style={{ display: "flex", gap: "0.4rem", alignItems: "flex-start" }}>
              <code data-testid="restore-command" style={{ overflowWrap: "anywhere", background: "#f5f5f5", padding: "0.1rem 0.3rem", flex: 1, minWidth: 0 }}>
                {c.command}
              </code>
              <CopyButton text={c.command} label={c.label} />
            </div>
          </li>
        ))}
      </ol>
    </details>
  );
}

function BackupsTable({ backups, chosen }: { backups: Dashboard["backups"]; chosen: string | null }) {
  if (backups.length === 0) return <p data-testid="backups-empty">No complete backups yet. Use “Back up now”.</p>;
  return (
    <table data-testid="backups" className="stack" style={{ borderCollapse: "collapse", width: "100%", fontSize: "0.9rem" }}>
      <thead>
        <tr>
          <th style={cell}>Taken (UTC)</th>
          <th style={num}>Size</th>
          <th style={num}>Tables</th>
          <th style={num}>Rows</th>
          <th style={cell}>Checksum</th>
          <th style={cell}>Signature</th>
          <th style={cell}>Copies</th>
          <th style={cell}>Restore drill</th>
          <th style={cell}>Files</th>
        </tr>
      </thead>
      <tbody>
        {backups.map((b) => (
          <tr key={b.key} data-testid="backup-row" data-key={b.key}>
            <td style={cell} data-label="Taken">
              {utc(b.createdAt)}
              <br />
              <small style={{ color: "#666" }}>
                {b.trigger}, {b.snapshot} snapshot, schema {b.latestMigration ?? "none"}
              </small>
            </td>
            <td style={num} data-label="Size">{formatBytes(b.size)}</td>
            <td style={num} data-label="Tables">{b.tables.length}</td>
            <td style={num} data-label="Rows">{b.rows}</td>
            <td style={cell} title={b.sha256} data-label="Checksum">
              ✓ {b.checksum}
              <br />
              <code style={{ fontSize: "0.8rem" }}>{b.sha256.slice(0, 12)}…</code>
            </td>
            <td style={cell} data-label="Signature" data-testid="backup-signature" data-signed={b.signedBy ? "yes" : "no"}>
              {b.signedBy ? (
                <>
                  signed
                  <br />
                  <code style={{ fontSize: "0.8rem" }}>key {b.signedBy}</code>
                </>
              ) : (
                <span style={{ color: "#b71c1c" }} title="made without BACKUP_SIGNING_KEY: a restore needs --allow-unsigned">
                  unsigned
                </span>
              )}
            </td>
            <td style={cell} data-label="Copies" data-testid="backup-copies" data-offsite={b.offsite}>
              R2 ✓
              <br />
              {b.offsite === "verified" ? (
                <span title={`read back and checked: ${b.offsiteAt}`}>off-site ✓</span>
              ) : b.offsite === "missing" ? (
                <span style={{ color: "#b71c1c" }} title="no verified off-site copy yet: the next backup run copies it (activity: offsite_copy_failed)">
                  off-site ✗
                </span>
              ) : (
                <span style={{ color: "#666" }} title="OFFSITE_S3_* are not set: no off-site copy is made">
                  off-site –
                </span>
              )}
            </td>
            <td style={cell} data-label="Restore drill" data-testid="backup-drill" data-drill={b.drill?.outcome ?? "none"}>
              <DrillCell drill={b.drill} />
            </td>
            <td style={cell} data-label="Files">
              <a href={`/api/admin/backup/${b.name}?download=1`} download>
                Download .sql.gz{b.encrypted ? ".age" : ""}
              </a>
              <details>
                <summary>Manifest</summary>
                <table style={{ fontSize: "0.85rem" }}>
                  <tbody>
                    {b.tables.map((t) => (
                      <tr key={t.name}>
                        <td>{t.name}</td>
                        <td style={{ textAlign: "right" }}>{t.rows}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <a href={`/api/admin/backup/${b.name}`}>Full manifest (JSON)</a>
              </details>
              <RestoreCommands name={b.name} open={b.name === chosen} encrypted={b.encrypted} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function IncompleteTable({ incomplete }: { incomplete: Dashboard["incomplete"] }) {
  if (incomplete.length === 0) return <p data-testid="incomplete-empty">None.</p>;
  return (
    <table data-testid="incomplete" className="stack" style={{ borderCollapse: "collapse", width: "100%", fontSize: "0.9rem" }}>
      <thead>
        <tr>
          <th style={cell}>Name</th>
          <th style={cell}>Why it is not a backup</th>
          <th style={num}>Size</th>
          <th style={cell}>Last written (UTC)</th>
        </tr>
      </thead>
      <tbody>
        {incomplete.map((i) => (
          <tr key={i.name} data-testid="incomplete-row">
            <td style={cell} data-label="Name">
              <code style={{ overflowWrap: "anywhere" }}>{i.name}</code>
            </td>
            <td style={cell} data-label="Why">{i.reason}</td>
            <td style={num} data-label="Size">{formatBytes(i.size)}</td>
            <td style={cell} data-label="Last written">{utc(i.uploaded)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Activity({ activity }: { activity: Dashboard["activity"] }) {
  const { entries, total, limit, offset } = activity;
  const prev = offset > 0 ? Math.max(0, offset - limit) : null;
  const next = offset + limit < total ? offset + limit : null;
  return (
    <>
      {entries.length === 0 ? (
        <p data-testid="activity-empty">No backup activity {offset > 0 ? "on this page" : "yet"}.</p>
      ) : (
        <table data-testid="activity" className="stack" style={{ borderCollapse: "collapse", width: "100%", fontSize: "0.9rem" }}>
          <thead>
            <tr>
              <th style={cell}>When (UTC)</th>
              <th style={cell}>What</th>
              <th style={cell}>Who</th>
              <th style={cell}>Details</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id} data-testid="activity-row" data-action={e.action}>
                <td style={cell} data-label="When">{e.createdAt.replace("T", " ").slice(0, 19)}</td>
                <td style={{ ...cell, color: e.action.endsWith("_failed") ? "#b71c1c" : undefined }} data-label="What" title={e.action} data-testid="activity-what">
                  {ACTION_LABEL[e.action] ?? e.action}
                </td>
                <td style={cell} data-label="Who" data-testid="activity-who" title={e.userId ?? undefined}>
                  {e.userId === null ? "system" : (e.userName ?? e.userId)}
                </td>
                <td style={{ ...cell, overflowWrap: "anywhere" }} data-label="Details">{activitySummary(e)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p data-testid="activity-pager">
        {total === 0 ? "" : `${offset + 1}–${Math.min(offset + limit, total)} of ${total}`}{" "}
        {prev !== null && <Link href={`/admin/backups?activity_offset=${prev}#activity`}>← Newer</Link>}{" "}
        {next !== null && <Link href={`/admin/backups?activity_offset=${next}#activity`}>Older →</Link>}
      </p>
    </>
  );
}

/** D1 down, emptied or its tables dropped: a notice, not an error, since the R2 side still works. */
function DatabaseNotice({ database }: { database: Dashboard["database"] }) {
  if (database.available) return null;
  return (
    <section
      role="status"
      data-testid="database-unavailable"
      style={{ border: "2px solid #f9a825", background: "#fff8e1", borderRadius: 8, padding: "0.8rem 1rem", margin: "1rem 0" }}
    >
      <h2 style={{ margin: 0, fontSize: "1.1rem" }}>The database ({DATABASE_NAME}) is unavailable</h2>
      <p style={{ margin: "0.3rem 0" }}>
        D1 did not answer as expected ({database.reason}). The backups below are read from R2 and are unaffected; activity, the
        last run and the buttons need the database and are hidden until it is back.
      </p>
      <p style={{ margin: 0 }}>
        To restore: pick a backup below (the newest is first), open its <strong>Restore commands</strong>, and follow BACKUP_RESTORATION.md.
      </p>
    </section>
  );
}

function Problem({ error }: { error: unknown }) {
  const { body } = errorResponse(error);
  if (body.error.code === "INTERNAL") console.error("/admin/backups:", error);
  return (
    <div role="alert" data-testid="dashboard-error" style={{ border: "2px solid #b71c1c", background: "#fdecea", padding: "0.8rem 1rem", borderRadius: 8 }}>
      <strong>The dashboard could not be loaded: {body.error.code}</strong>
      <p style={{ margin: "0.3rem 0 0" }}>{body.error.code === "INTERNAL" ? "internal error (see the logs)" : body.error.message}</p>
    </div>
  );
}

export default async function BackupsDashboard({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  // Second line of defence: the middleware already sent strangers to sign in and refused non-admins.
  try {
    await requireAdmin();
  } catch (e) {
    return <Problem error={e} />;
  }

  let data: Dashboard;
  let chosen: string | null;
  try {
    const parsed = searchSchema.safeParse(await searchParams);
    if (!parsed.success) throw new BackupError("INVALID_INPUT", parsed.error.issues[0].message);
    const { db, bucket } = getBindings();
    data = await getDashboard({
      db,
      bucket,
      activity: { limit: ACTIVITY_PAGE_SIZE, offset: parsed.data.activity_offset },
      offsiteConfigured: isOffsiteConfigured(),
    });
    // Without D1 the admin is most likely here to restore: the newest backup's commands open.
    chosen = parsed.data.restore ?? (data.database.available ? null : (data.backups[0]?.name ?? null));
  } catch (e) {
    return (
      <main>
        <h1>Database backups</h1>
        <Problem error={e} />
      </main>
    );
  }

  return (
    <main style={{ maxWidth: "60rem" }}>
      <style>{PHONE_CSS}</style>
      <p>
        <Link href="/">← Portal</Link> · <Link href="/docs/backup-api">Backup API</Link>
      </p>
      <h1>Database backups</h1>
      <DatabaseNotice database={data.database} />
      <Health health={data.health} />

      {data.database.available && (
        <section style={{ ...section, display: "flex", gap: "2rem", flexWrap: "wrap", alignItems: "flex-start" }}>
          <BackupNowButton running={data.running ? { startedAt: data.running.startedAt, owner: data.running.owner } : null} />
          <CleanupButton />
        </section>
      )}
      {data.interrupted && (
        <p role="status" data-testid="backup-interrupted">
          Interrupted: the {data.interrupted.op ?? "backup"} run of {data.interrupted.owner} started {utc(data.interrupted.startedAt)} stopped
          without finishing{data.interrupted.name ? ` (writing ${data.interrupted.name})` : ""}. The next backup or cleanup logs it as failed and
          removes what it left.
        </p>
      )}

      <section style={section}>
        <h2>Backup size, last 30 days</h2>
        <SizeChart points={data.sizes} />
      </section>

      <section style={section}>
        <h2>Restore time (nightly drill), last 30 days</h2>
        <p data-testid="proven-restorable" style={{ marginTop: 0 }}>
          {data.provenRestorable ? (
            <>
              Newest backup proven restorable: <strong>{data.provenRestorable.name}</strong> (drill passed {data.provenRestorable.drilledAt} UTC). Prefer it
              when restoring (BACKUP_RESTORATION.md).
            </>
          ) : (
            "No backup has passed a restore drill yet."
          )}
        </p>
        <RtoChart points={data.rto ?? []} />
      </section>

      <section style={section}>
        <h2>Backups ({data.backups.length})</h2>
        <BackupsTable backups={data.backups} chosen={chosen} />
      </section>

      <section style={section}>
        <h2>Incomplete leftovers ({data.incomplete.length})</h2>
        <p style={{ color: "#555", marginTop: 0 }}>Interrupted or damaged runs: never offered for restore, removed by cleanup after a day.</p>
        <IncompleteTable incomplete={data.incomplete} />
      </section>

      <section style={section} id="activity">
        <h2>Recent backup activity</h2>
        {data.database.available ? <Activity activity={data.activity} /> : <p data-testid="activity-unavailable">Kept in the database: not available now.</p>}
      </section>
    </main>
  );
}
