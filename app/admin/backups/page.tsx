// /admin/backups: the admins' backup dashboard. Server-rendered on every request (edge runtime, the
// same bindings as the API) and protected by the middleware (Clerk admin); it checks the admin
// rule again itself. One library call (getDashboard) gathers what it shows; the two buttons are
// client components calling the admin API (actions.tsx).
import Link from "next/link";
import { z } from "zod";
import { requireAdmin } from "../../../lib/auth";
import { activitySummary, BackupError, errorResponse, formatBytes } from "../../../lib/backup";
import { getBindings } from "../../../lib/env";
import { type BackupHealth, type Dashboard, getDashboard, type SizePoint } from "../../../lib/monitor";
import { BackupNowButton, CleanupButton } from "./actions";

export const runtime = "edge";
export const dynamic = "force-dynamic";

const ACTIVITY_PAGE_SIZE = 20;

const searchSchema = z.object({ activity_offset: z.string().regex(/^\d{1,9}$/, "activity_offset must be a whole number").optional() });

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

/** Backup size per backup over the last 30 days, as bars: a change in size is a change in data. */
function SizeChart({ points }: { points: SizePoint[] }) {
  if (points.length === 0) return <p data-testid="size-chart-empty">No backups in the last 30 days.</p>;
  const width = 640;
  const height = 160;
  const pad = { left: 56, right: 8, top: 8, bottom: 22 };
  const max = Math.max(...points.map((p) => p.size));
  const slot = (width - pad.left - pad.right) / points.length;
  const barW = Math.max(1, Math.min(24, slot * 0.8));
  const plotH = height - pad.top - pad.bottom;
  return (
    <svg
      data-testid="size-chart"
      role="img"
      aria-label={`Backup size over the last 30 days: ${points.length} backups, largest ${formatBytes(max)}`}
      viewBox={`0 0 ${width} ${height}`}
      style={{ width: "100%", maxWidth: width, height: "auto", background: "#fafafa", border: "1px solid #e0e0e0", borderRadius: 6 }}
    >
      <text x={pad.left - 6} y={pad.top + 10} textAnchor="end" fontSize="11" fill="#555">
        {formatBytes(max)}
      </text>
      <text x={pad.left - 6} y={height - pad.bottom} textAnchor="end" fontSize="11" fill="#555">
        0
      </text>
      <line x1={pad.left} y1={height - pad.bottom} x2={width - pad.right} y2={height - pad.bottom} stroke="#999" />
      {points.map((p, i) => {
        const h = max > 0 ? Math.max(1, (p.size / max) * plotH) : 1;
        const x = pad.left + i * slot + (slot - barW) / 2;
        return (
          <rect key={p.key} x={x} y={height - pad.bottom - h} width={barW} height={h} fill="#1976d2">
            <title>{`${p.key}: ${formatBytes(p.size)}`}</title>
          </rect>
        );
      })}
      <text x={pad.left} y={height - 6} fontSize="11" fill="#555">
        {points[0].date}
      </text>
      <text x={width - pad.right} y={height - 6} textAnchor="end" fontSize="11" fill="#555">
        {points[points.length - 1].date}
      </text>
    </svg>
  );
}

function BackupsTable({ backups }: { backups: Dashboard["backups"] }) {
  if (backups.length === 0) return <p data-testid="backups-empty">No complete backups yet. Use “Back up now”.</p>;
  return (
    <table data-testid="backups" style={{ borderCollapse: "collapse", width: "100%", fontSize: "0.9rem" }}>
      <thead>
        <tr>
          <th style={cell}>Taken (UTC)</th>
          <th style={num}>Size</th>
          <th style={num}>Tables</th>
          <th style={num}>Rows</th>
          <th style={cell}>Checksum</th>
          <th style={cell}>Signature</th>
          <th style={cell}>Files</th>
        </tr>
      </thead>
      <tbody>
        {backups.map((b) => (
          <tr key={b.key} data-testid="backup-row" data-key={b.key}>
            <td style={cell}>
              {utc(b.createdAt)}
              <br />
              <small style={{ color: "#666" }}>
                {b.trigger}, {b.snapshot} snapshot, schema {b.latestMigration ?? "none"}
              </small>
            </td>
            <td style={num}>{formatBytes(b.size)}</td>
            <td style={num}>{b.tables.length}</td>
            <td style={num}>{b.rows}</td>
            <td style={cell} title={b.sha256}>
              ✓ {b.checksum}
              <br />
              <code style={{ fontSize: "0.8rem" }}>{b.sha256.slice(0, 12)}…</code>
            </td>
            <td style={cell} data-testid="backup-signature" data-signed={b.signedBy ? "yes" : "no"}>
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
            <td style={cell}>
              <a href={`/api/admin/backup/${b.name}?download=1`} download>
                Download .sql.gz
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
    <table data-testid="incomplete" style={{ borderCollapse: "collapse", width: "100%", fontSize: "0.9rem" }}>
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
            <td style={cell}>
              <code>{i.name}</code>
            </td>
            <td style={cell}>{i.reason}</td>
            <td style={num}>{formatBytes(i.size)}</td>
            <td style={cell}>{utc(i.uploaded)}</td>
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
        <table data-testid="activity" style={{ borderCollapse: "collapse", width: "100%", fontSize: "0.9rem" }}>
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
                <td style={cell}>{e.createdAt.replace("T", " ").slice(0, 19)}</td>
                <td style={{ ...cell, color: e.action.endsWith("_failed") ? "#b71c1c" : undefined }}>{e.action}</td>
                <td style={cell}>{e.userId ?? "system"}</td>
                <td style={cell}>{activitySummary(e)}</td>
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
  try {
    const parsed = searchSchema.safeParse(await searchParams);
    if (!parsed.success) throw new BackupError("INVALID_INPUT", parsed.error.issues[0].message);
    const { db, bucket } = getBindings();
    data = await getDashboard({ db, bucket, activity: { limit: ACTIVITY_PAGE_SIZE, offset: parsed.data.activity_offset } });
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
      <p>
        <Link href="/">← Portal</Link> · <Link href="/docs/backup-api">Backup API</Link>
      </p>
      <h1>Database backups</h1>
      <Health health={data.health} />

      <section style={{ ...section, display: "flex", gap: "2rem", flexWrap: "wrap", alignItems: "flex-start" }}>
        <BackupNowButton running={data.running ? { startedAt: data.running.startedAt, owner: data.running.owner } : null} />
        <CleanupButton />
      </section>
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
        <h2>Backups ({data.backups.length})</h2>
        <BackupsTable backups={data.backups} />
      </section>

      <section style={section}>
        <h2>Incomplete leftovers ({data.incomplete.length})</h2>
        <p style={{ color: "#555", marginTop: 0 }}>Interrupted or damaged runs: never offered for restore, removed by cleanup after a day.</p>
        <IncompleteTable incomplete={data.incomplete} />
      </section>

      <section style={section} id="activity">
        <h2>Recent backup activity</h2>
        <Activity activity={data.activity} />
      </section>
    </main>
  );
}
