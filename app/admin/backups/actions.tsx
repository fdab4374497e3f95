"use client";
// The dashboard's two buttons. They call the same admin API as curl does (the browser's Clerk
// session cookie authenticates them; the middleware accepts cookie-authenticated POST/DELETE only
// from this portal's own pages) and show the result or the API's error message in place.
import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";

interface ApiError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

type Call<T> = { ok: true; body: T } | { ok: false; status: number; error: ApiError };

async function call<T>(method: string, url: string): Promise<Call<T>> {
  let res: Response;
  try {
    res = await fetch(url, { method, credentials: "same-origin", headers: { accept: "application/json" }, cache: "no-store" });
  } catch (e) {
    return { ok: false, status: 0, error: { code: "NETWORK", message: `the request did not reach the portal: ${String(e)}` } };
  }
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: reported below with the status
  }
  if (res.ok && body !== null) return { ok: true, body: body as T };
  const error = (body as { error?: ApiError } | null)?.error;
  return { ok: false, status: res.status, error: error ?? { code: `HTTP_${res.status}`, message: res.statusText || "unexpected response" } };
}

const box = { padding: "0.6rem 0.8rem", borderRadius: 6, margin: "0.5rem 0", fontSize: "0.95rem" } as const;
const okBox = { ...box, background: "#e8f5e9", border: "1px solid #66bb6a" };
const errBox = { ...box, background: "#fdecea", border: "1px solid #e57373" };
const infoBox = { ...box, background: "#fff8e1", border: "1px solid #ffca28" };
const button = { padding: "0.45rem 0.9rem", borderRadius: 6, border: "1px solid #1565c0", background: "#1976d2", color: "white", cursor: "pointer", fontSize: "0.95rem" } as const;
const disabledButton = { ...button, background: "#9e9e9e", border: "1px solid #757575", cursor: "not-allowed" };
const secondary = { ...button, background: "white", color: "#1565c0" };
const danger = { ...button, background: "#c62828", border: "1px solid #b71c1c" };

function useElapsed(since: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (since === null) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [since]);
  return since === null ? 0 : Math.max(0, Math.round((now - since) / 1000));
}

interface CreatedBackup {
  key: string;
  size: number;
  size_kb: string;
  tables: string[];
  rows: number;
}

type BackupState =
  | { kind: "idle" }
  | { kind: "running"; since: number }
  | { kind: "done"; backup: CreatedBackup }
  | { kind: "locked"; startedAt: string | null }
  | { kind: "error"; error: ApiError };

/** Polling interval while another run holds the lock. */
const LOCK_POLL_MS = 5000;

export function BackupNowButton({ running }: { running: { startedAt: string; owner: string } | null }) {
  const router = useRouter();
  const [state, setState] = useState<BackupState>(running ? { kind: "locked", startedAt: running.startedAt } : { kind: "idle" });
  const elapsed = useElapsed(state.kind === "running" ? state.since : null);

  // While another run holds the lock the button stays disabled; it comes back when the run ends.
  useEffect(() => {
    if (state.kind !== "locked") return;
    const t = setInterval(async () => {
      const r = await call<{ running: unknown }>("GET", "/api/admin/backup/status");
      if (r.ok && !r.body.running) {
        setState({ kind: "idle" });
        router.refresh();
      }
    }, LOCK_POLL_MS);
    return () => clearInterval(t);
  }, [state.kind, router]);

  async function backUpNow() {
    setState({ kind: "running", since: Date.now() });
    const r = await call<{ backup: CreatedBackup }>("POST", "/api/admin/backup");
    if (r.ok) {
      setState({ kind: "done", backup: r.body.backup });
      router.refresh(); // the new backup appears in the table, the health turns green
    } else if (r.error.code === "BACKUP_IN_PROGRESS") {
      setState({ kind: "locked", startedAt: typeof r.error.details?.startedAt === "string" ? r.error.details.startedAt : null });
    } else {
      setState({ kind: "error", error: r.error });
      // A run that failed on the server is in activity_log now: the health shows it as failing.
      if (r.status !== 0) router.refresh();
    }
  }

  const busy = state.kind === "running" || state.kind === "locked";
  return (
    <div data-testid="backup-now">
      <button type="button" onClick={backUpNow} disabled={busy} aria-busy={state.kind === "running"} style={busy ? disabledButton : button}>
        {state.kind === "running" ? `Backing up… ${elapsed} s` : state.kind === "locked" ? "A backup is running" : "Back up now"}
      </button>
      {state.kind === "done" && (
        <div role="status" data-testid="backup-result" style={okBox}>
          Backup created: <code>{state.backup.key}</code> ({state.backup.size_kb} KB, {state.backup.tables.length} tables, {state.backup.rows} rows)
        </div>
      )}
      {state.kind === "locked" && (
        <div role="status" data-testid="backup-locked" style={infoBox}>
          Another backup or cleanup is running{state.startedAt ? ` (since ${state.startedAt})` : ""}. This button comes back when it finishes.
        </div>
      )}
      {state.kind === "error" && (
        <div role="alert" data-testid="backup-error" style={errBox}>
          Backup failed: <strong>{state.error.code}</strong> {state.error.message}
        </div>
      )}
    </div>
  );
}

interface CleanupBody {
  deleted_count: number;
  deleted: string[];
  kept: string[];
  decisions: { name: string; key: string; action: "keep" | "delete"; reasons: string[] }[];
  policy: { daily: number; weekly: number; monthly: number; newest: number };
  incomplete_deleted: string[];
  needs_attention: { name: string; keys: string[]; reason: string }[];
  dry_run: boolean;
}

type CleanupState =
  | { kind: "idle" }
  | { kind: "previewing" }
  | { kind: "confirm"; plan: CleanupBody }
  | { kind: "deleting"; plan: CleanupBody }
  | { kind: "done"; result: CleanupBody }
  | { kind: "error"; error: ApiError };

function KeyList({ title, keys, testId }: { title: string; keys: string[]; testId: string }) {
  return (
    <div data-testid={testId}>
      <strong>
        {title} ({keys.length})
      </strong>
      {keys.length > 0 && (
        <ul style={{ margin: "0.25rem 0 0.5rem", maxHeight: "12rem", overflowY: "auto" }}>
          {keys.map((k) => (
            <li key={k}>
              <code>{k}</code>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The kept backups with why each stays (`daily 2026-01-15`, `weekly 2026-W03`, `newest 7`, …). */
function KeptList({ plan }: { plan: CleanupBody }) {
  const kept = plan.decisions.filter((d) => d.action === "keep");
  return (
    <div data-testid="cleanup-keep-list">
      <strong>Kept ({kept.length})</strong>
      {kept.length > 0 && (
        <ul style={{ margin: "0.25rem 0 0.5rem", maxHeight: "12rem", overflowY: "auto" }}>
          {kept.map((d) => (
            <li key={d.key} data-testid="cleanup-keep" data-name={d.name}>
              <code>{d.key}</code> <span style={{ color: "#555" }}>{d.reasons.join(", ")}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

const policyText = (p: CleanupBody["policy"]) =>
  `the newest backup of each of the last ${p.daily} days, ${p.weekly} weeks and ${p.monthly} months, and the newest ${p.newest} always`;

/** "Clean up old backups": a dry run first, shown for confirmation; only then the real cleanup. */
export function CleanupButton() {
  const router = useRouter();
  const [state, setState] = useState<CleanupState>({ kind: "idle" });

  async function preview() {
    setState({ kind: "previewing" });
    const r = await call<CleanupBody>("DELETE", "/api/admin/backup?dry_run=1");
    setState(r.ok ? { kind: "confirm", plan: r.body } : { kind: "error", error: r.error });
  }

  async function confirm(plan: CleanupBody) {
    setState({ kind: "deleting", plan });
    const r = await call<CleanupBody>("DELETE", "/api/admin/backup");
    if (r.ok) {
      setState({ kind: "done", result: r.body });
      router.refresh();
    } else {
      setState({ kind: "error", error: r.error });
    }
  }

  const planned = (p: CleanupBody) => p.deleted.length + p.incomplete_deleted.length;
  const deleteLabel = (p: CleanupBody) =>
    `Delete ${p.deleted.length} backup(s)${p.incomplete_deleted.length ? ` and ${p.incomplete_deleted.length} leftover key(s)` : ""}`;
  return (
    <div data-testid="cleanup">
      <button
        type="button"
        onClick={preview}
        disabled={state.kind === "previewing" || state.kind === "deleting"}
        style={state.kind === "previewing" || state.kind === "deleting" ? disabledButton : secondary}
      >
        {state.kind === "previewing" ? "Checking what would be deleted…" : "Clean up old backups"}
      </button>
      {(state.kind === "confirm" || state.kind === "deleting") && (
        <div role="dialog" aria-label="Confirm cleanup" data-testid="cleanup-confirm" style={infoBox}>
          {planned(state.plan) === 0 ? (
            <p style={{ margin: "0 0 0.5rem" }}>Nothing to clean up: every backup is within the retention policy ({policyText(state.plan.policy)}).</p>
          ) : (
            <p style={{ margin: "0 0 0.5rem" }}>
              Retention keeps {policyText(state.plan.policy)}; it would delete these. Nothing is deleted until you confirm.
            </p>
          )}
          <KeyList title="Would be deleted" keys={state.plan.deleted} testId="cleanup-delete-list" />
          {state.plan.incomplete_deleted.length > 0 && (
            <KeyList title="Leftovers of interrupted runs, would be deleted" keys={state.plan.incomplete_deleted} testId="cleanup-incomplete-list" />
          )}
          <KeptList plan={state.plan} />
          {state.plan.needs_attention.length > 0 && (
            <p>
              {state.plan.needs_attention.length} backup(s) do not match their manifest and are never deleted automatically: see the
              incomplete list below.
            </p>
          )}
          <div style={{ display: "flex", gap: "0.5rem" }}>
            {planned(state.plan) > 0 && (
              <button
                type="button"
                onClick={() => confirm(state.plan)}
                disabled={state.kind === "deleting"}
                style={state.kind === "deleting" ? disabledButton : danger}
              >
                {state.kind === "deleting" ? "Deleting…" : deleteLabel(state.plan)}
              </button>
            )}
            <button type="button" onClick={() => setState({ kind: "idle" })} disabled={state.kind === "deleting"} style={secondary}>
              {planned(state.plan) > 0 ? "Cancel" : "Close"}
            </button>
          </div>
        </div>
      )}
      {state.kind === "done" && (
        <div role="status" data-testid="cleanup-result" style={okBox}>
          Cleanup done: {state.result.deleted_count} backup(s) deleted
          {state.result.incomplete_deleted.length ? `, ${state.result.incomplete_deleted.length} leftover key(s) removed` : ""}, {state.result.kept.length} kept.
        </div>
      )}
      {state.kind === "error" && (
        <div role="alert" data-testid="cleanup-error" style={errBox}>
          Cleanup failed: <strong>{state.error.code}</strong> {state.error.message}
        </div>
      )}
    </div>
  );
}

/** Copies one command to the clipboard; the command itself stays selectable text beside it. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  return (
    <button
      type="button"
      data-testid="copy"
      aria-label={`Copy: ${label}`}
      style={{ ...secondary, padding: "0.15rem 0.5rem", fontSize: "0.8rem", flex: "none" }}
      onClick={() => {
        // Clipboard access needs a secure context (https or localhost); say so rather than fail silently.
        if (!navigator.clipboard) {
          setCopied("no");
          return;
        }
        navigator.clipboard.writeText(text).then(
          () => setCopied("yes"),
          () => setCopied("no"),
        );
      }}
    >
      {copied === "yes" ? "Copied" : copied === "no" ? "Select and copy" : "Copy"}
    </button>
  );
}
