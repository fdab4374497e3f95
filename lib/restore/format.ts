// Human-readable output of a restore, a dry run or a put-back (the CLI prints this, or JSON).
import type { RestoreResult } from "./restore";
import { formatBytes } from "../backup";
import { formatMs } from "./progress";

const mark = (ok: boolean) => (ok ? "✓" : "✗");

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padStart(n) : t.padEnd(n);
}

export function formatResult(r: RestoreResult): string {
  const lines: string[] = [];
  const b = r.backup;
  // First and last, so nobody misses it: this backup's origin was not proven.
  const unverified = b.signature.allowed ? `!!! UNVERIFIED BACKUP (signature: ${b.signature.state}): used because of --allow-unsigned` : null;
  if (unverified) lines.push(unverified);
  lines.push(`Backup    ${b.name ?? "(unnamed)"}  ${b.key}`);
  lines.push(`          from ${b.origin}`);
  const facts = [
    b.createdAt ? `taken ${b.createdAt}` : null,
    b.objectSize !== null ? `${formatBytes(b.objectSize)} gzip` : null,
    `${formatBytes(b.sqlSize)} SQL`,
    b.latestMigration ? `latest migration ${b.latestMigration}` : null,
  ].filter(Boolean);
  lines.push(`          ${facts.join(", ")}`);
  lines.push("Verified");
  for (const c of r.verification) lines.push(`  ${mark(c.ok)} ${pad(c.check, 14)} ${c.detail}`);

  if (r.target) {
    const state = r.mode === "put-back" ? "" : r.target.empty ? " (empty)" : ` (NOT empty: ${r.target.contents.length} objects)`;
    lines.push(`Target    ${r.target.label}${state}`);
  }

  if (r.mode !== "put-back" && b.tables.length > 0) {
    const width = Math.max(5, ...b.tables.map((t) => t.name.length));
    const counts = new Map((r.checks?.tables ?? []).map((t) => [t.name, t]));
    lines.push(r.checks ? `Tables    ${pad("", width)}  manifest  restored` : `Tables to restore (rows from the manifest)`);
    for (const t of b.tables) {
      const got = counts.get(t.name);
      lines.push(
        r.checks
          ? `  ${mark(!!got?.ok)} ${pad(t.name, width)} ${pad(t.rows, 9, true)} ${pad(got?.actual ?? "missing", 9, true)}`
          : `    ${pad(t.name, width)} ${pad(t.rows, 9, true)}`,
      );
    }
    for (const extra of (r.checks?.tables ?? []).filter((t) => t.expected === null && b.tables.length > 0)) {
      lines.push(`  ✗ ${pad(extra.name, width)} ${pad("-", 9, true)} ${pad(extra.actual ?? 0, 9, true)}  (not in the backup)`);
    }
    lines.push(`    ${pad("total", width)} ${pad(b.totalRows ?? 0, 9, true)}`);
  }

  if (r.putBack) {
    const p = r.putBack;
    lines.push(`Put back  ${p.rows} rows (--mode ${p.mode}${p.cascade ? ", --cascade" : ""}) -> ${p.out}`);
    for (const t of p.tables) {
      lines.push(`    ${t.name}: ${t.rows} rows where ${t.where}${t.splitRows ? ` (${t.splitRows} too large for one statement, split)` : ""}`);
    }
    for (const l of p.links) lines.push(`    ${l.table}.${l.columns.join(",")}: ${l.rows} links to ${l.parent} set back (they were ON DELETE SET ${l.setDefault ? "DEFAULT" : "NULL"})`);
    if (p.triggers.length > 0) lines.push(`          triggers dropped and re-created around the writes (never fired): ${p.triggers.map((t) => t.name).join(", ")}`);
    lines.push(`          ${p.statements} statements, ${formatBytes(p.bytes)}, largest statement ${p.largestStatement} bytes (D1 limit 100000)`);
    if (p.comparison) {
      lines.push("Compared cell by cell with the backup");
      for (const c of p.comparison) {
        const bad = c.missing + c.different;
        const extra = [c.kept ? `${c.kept} kept their live values` : "", c.links ? `${c.links - c.linksKept} of ${c.links} links set back` : "", c.linksKept ? `${c.linksKept} links left (re-set or row gone)` : ""].filter(Boolean);
        lines.push(`  ${mark(bad === 0)} ${c.table}: ${c.selected} rows${c.missing ? `, ${c.missing} MISSING` : ""}${c.different ? `, ${c.different} DIFFERENT` : ""}${extra.length ? `; ${extra.join(", ")}` : ""}`);
      }
      const show = (d: (typeof p.failures)[number]) =>
        d.column === null ? `${d.table} key ${d.key}: row missing` : `${d.table} key ${d.key} column ${d.column}${d.link ? " (link)" : ""}: target ${d.live}, backup ${d.backup}`;
      for (const d of p.failures.slice(0, 20)) lines.push(`  ✗ ${show(d)}`);
      if (p.failures.length > 20) lines.push(`  ✗ … ${p.failures.length - 20} more differences (--json lists them all)`);
      if (p.kept.length > 0) lines.push(`  kept live values (--mode ignore; not a failure):`);
      for (const d of p.kept.slice(0, 20)) lines.push(`    ${show(d)}`);
      if (p.kept.length > 20) lines.push(`    … ${p.kept.length - 20} more (--json lists them all)`);
    }
  }

  if (r.plan) {
    lines.push(r.mode === "put-back" ? (r.putBack?.applied ? "Applied with" : "Apply with") : r.mode === "dry-run" ? "Would run" : "Ran");
    if (r.plan.replaces.length > 0) {
      lines.push(`  first (--force): ${r.plan.replaces.length > 8 ? `${r.plan.replaces.slice(0, 8).join(" ")} …` : r.plan.replaces.join(" ")}`);
    }
    lines.push(`  ${r.plan.command}`);
    for (const n of r.plan.notes) lines.push(`  note: ${n}`);
  }

  if (r.checks) {
    lines.push("Checks");
    for (const c of r.checks.checks) lines.push(`  ${mark(c.ok)} ${pad(c.check, 18)} ${c.detail}`);
  }
  if (r.bookmark) lines.push(`Time Travel bookmark before the restore: ${r.bookmark}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);

  if (r.timings.length > 0) {
    lines.push("Timings");
    for (const t of r.timings) lines.push(`  ${pad(t.step, 22)} ${pad(formatMs(t.ms), 10, true)}`);
    lines.push(`  ${pad("total (RTO)", 22)} ${pad(formatMs(r.totalMs), 10, true)}`);
  }

  if (r.audit.length > 0) lines.push(`Logged in the target's activity_log: ${r.audit.join(", ")}`);
  if (unverified) lines.push(unverified);
  if (r.mode === "dry-run") lines.push("DRY RUN: verified; nothing was changed.");
  else if (r.mode === "put-back" && !r.putBack?.applied) lines.push(`PUT-BACK FILE WRITTEN: the target was not changed (add --apply, or run the command above).`);
  else if (r.mode === "put-back" && r.putBack && r.ok && !r.putBack.comparison) {
    // Only a remote target has no file to read back: never call unchecked rows OK.
    lines.push("RESULT: APPLIED, NOT COMPARED (remote target: check the put-back rows yourself)");
  } else if (r.mode === "put-back" && r.putBack && r.putBack.failures.length > 0) {
    lines.push(`RESULT: FAILED: ${r.putBack.failures.length} cell(s) or row(s) of the target differ from the backup after the put-back (listed above)`);
  } else lines.push(r.ok ? "RESULT: OK" : "RESULT: FAILED (see the checks above)");
  return lines.join("\n");
}
