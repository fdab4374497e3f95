// The retention rule, pure: which backups a cleanup keeps and why. Grandfather-father-son: the
// newest complete backup of each of the last N UTC days, ISO weeks and calendar months, plus the
// newest 7 complete backups and the newest one with a verified off-site copy. No I/O here, so the
// same plan serves R2 and any other store that lists backups (retention.ts applies it).
//
// "The last N days" = the N UTC days ending with the day that contains the reference time: with
// daily=30 and a reference on 2026-01-15, 2025-12-17 … 2026-01-15. Weeks (ISO 8601, Monday first,
// labelled by ISO week-year, e.g. 2026-W53 runs 2026-12-28 … 2027-01-03) and months likewise.
// The reference time is `now`, or the newest complete backup when that is earlier: while backups
// are failing nothing ages out, older ones expire only as new ones arrive.
import { z } from "zod";
import { BackupError } from "../errors";
import { timestampOf } from "./keys";
import { isFutureDated } from "./list";

export interface RetentionPolicy {
  /** Keep the newest backup of each of the last this many UTC days (0: no daily tier). */
  daily: number;
  /** … of each of the last this many ISO weeks. */
  weekly: number;
  /** … of each of the last this many calendar months (UTC). */
  monthly: number;
  /** Leftovers of interrupted runs older than this many hours are deleted. */
  incompleteMaxAgeHours: number;
}

/** Never deleted, whatever the tiers say: the newest this many complete backups. */
export const NEWEST_KEPT = 7;

export const DEFAULT_RETENTION: Readonly<RetentionPolicy> = Object.freeze({
  daily: 30,
  weekly: 12,
  monthly: 24,
  incompleteMaxAgeHours: 24,
});

// Upper bounds keep the arithmetic finite and catch a typo (daily=3000000); all far beyond need.
const BOUNDS = { daily: 3660, weekly: 520, monthly: 1200 } as const;
const policySchema = z
  .object({
    daily: z.number().int().min(0).max(BOUNDS.daily),
    weekly: z.number().int().min(0).max(BOUNDS.weekly),
    monthly: z.number().int().min(0).max(BOUNDS.monthly),
    incompleteMaxAgeHours: z.number().int().min(1).max(876_000),
  })
  .strict(); // a misspelt field must not silently fall back to the default

/** Defaults overlaid with the given fields; anything invalid is INVALID_INPUT (HTTP 400). */
export function parseRetentionPolicy(input: unknown): RetentionPolicy {
  if (input !== undefined && input !== null && (typeof input !== "object" || Array.isArray(input))) {
    throw new BackupError("INVALID_INPUT", "retention policy must be an object");
  }
  const given = Object.fromEntries(Object.entries((input ?? {}) as object).filter(([, v]) => v !== undefined));
  const parsed = policySchema.safeParse({ ...DEFAULT_RETENTION, ...given });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join(".");
    throw new BackupError("INVALID_INPUT", `invalid retention policy${where ? ` (${where})` : ""}: ${issue.message}`, {
      details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
    });
  }
  return parsed.data;
}

export type ParsedRetention = { policy: RetentionPolicy; problem: null } | { policy: null; problem: string };

/**
 * BACKUP_RETENTION, e.g. `daily=30,weekly=12,monthly=24`: unset or empty is the default; a key left
 * out keeps its default; 0 turns a tier off. Never throws: the entry point decides what a problem
 * costs (a config error for the app, the cleanup stage of the nightly run, exit 2 for the CLI).
 */
export function parseRetentionSetting(raw: string | undefined): ParsedRetention {
  const bad = (why: string): ParsedRetention => ({
    policy: null,
    problem: `BACKUP_RETENTION ${why} (expected e.g. daily=30,weekly=12,monthly=24; keys daily, weekly, monthly)`,
  });
  const text = (raw ?? "").trim();
  if (text === "") return { policy: { ...DEFAULT_RETENTION }, problem: null };
  const given: Partial<Record<keyof typeof BOUNDS, number>> = {};
  for (const part of text.split(",")) {
    const m = /^\s*([a-z]+)\s*=\s*(\d{1,5})\s*$/.exec(part);
    if (!m) return bad(`has a malformed entry ${JSON.stringify(part.trim())}`);
    const key = m[1];
    if (!Object.hasOwn(BOUNDS, key)) return bad(`has an unknown key ${JSON.stringify(key)}`);
    const k = key as keyof typeof BOUNDS;
    if (given[k] !== undefined) return bad(`sets ${k} twice`);
    const n = Number(m[2]);
    if (n > BOUNDS[k]) return bad(`${k}=${n} is more than ${BOUNDS[k]}`);
    given[k] = n;
  }
  return { policy: { ...DEFAULT_RETENTION, ...given }, problem: null };
}

/** A complete backup as any store lists it: its name and the key of its object. */
export interface RetentionCandidate {
  name: string;
  key: string;
}

export interface RetentionDecision {
  name: string;
  key: string;
  keep: boolean;
  /** Why it is kept (`newest 7`, `daily 2026-01-15`, `weekly 2026-W03`, `monthly 2026-01`, `off-site copy`, `future-dated`); empty when deleted. */
  reasons: string[];
}

export interface RetentionPlanOptions {
  /** Backups with a verified off-site copy; the newest of them (not future-dated) is kept. */
  offsiteVerified?: ReadonlySet<string> | ((name: string) => boolean);
}

const DAY_MS = 24 * 60 * 60 * 1000;
const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Whole UTC days since 1970-01-01 (a Thursday). */
const dayIndex = (t: Date) => Math.floor(t.getTime() / DAY_MS);
// ISO weeks start on Monday; 1969-12-29, three days before day 0, was one.
const weekIndex = (t: Date) => Math.floor((dayIndex(t) + 3) / 7);
const monthIndex = (t: Date) => t.getUTCFullYear() * 12 + t.getUTCMonth();

function dayLabel(t: Date): string {
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}
/** ISO 8601 week label: the week-year is the year of the week's Thursday. */
export function isoWeekLabel(t: Date): string {
  const thursday = new Date(weekIndex(t) * 7 * DAY_MS); // the week's Monday is 3 days earlier
  const year = thursday.getUTCFullYear();
  const week = Math.floor((dayIndex(thursday) - dayIndex(new Date(Date.UTC(year, 0, 1)))) / 7) + 1;
  return `${year}-W${pad(week)}`;
}
const monthLabel = (t: Date) => `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}`;

const TIERS = [
  { tier: "daily", index: dayIndex, label: dayLabel },
  { tier: "weekly", index: weekIndex, label: isoWeekLabel },
  { tier: "monthly", index: monthIndex, label: monthLabel },
] as const;

function nameTime(name: string): Date {
  const t = timestampOf(name);
  if (!t) throw new BackupError("INTERNAL", `listing returned a backup with an invalid name: ${name}`);
  return t;
}

/**
 * The time periods count back from (see the top of this file): `now`, or the newest complete
 * backup not dated in the future when that is earlier. Null without such a backup.
 */
export function retentionReference(backups: readonly RetentionCandidate[], now: Date): Date | null {
  let newest: number | null = null;
  for (const b of backups) {
    if (isFutureDated(b.name, now)) continue;
    const t = nameTime(b.name).getTime();
    if (newest === null || t > newest) newest = t;
  }
  return newest === null ? null : new Date(Math.min(newest, now.getTime()));
}

/**
 * One decision per complete backup, newest first. Only complete backups belong here; leftovers
 * and damaged ones are planCleanup's (retention.ts).
 */
export function planRetention(
  backups: readonly RetentionCandidate[],
  now: Date,
  policy: RetentionPolicy,
  opts: RetentionPlanOptions = {},
): RetentionDecision[] {
  if (Number.isNaN(now.getTime())) throw new BackupError("INVALID_INPUT", "retention: invalid date for now");
  const sorted = backups
    .map((b) => ({ ...b, time: nameTime(b.name) }))
    .sort((a, b) => b.time.getTime() - a.time.getTime() || (a.name < b.name ? 1 : -1));
  const reasons = new Map<string, string[]>(sorted.map((b) => [b.name, []]));
  // A future name (a clock fault) is kept, and otherwise ignored: counted, it would take a
  // "newest" place, fill this week's slot and move the reference point to 2099.
  const real = sorted.filter((b) => {
    if (!isFutureDated(b.name, now)) return true;
    reasons.get(b.name)!.push("future-dated");
    return false;
  });
  real.slice(0, NEWEST_KEPT).forEach((b) => reasons.get(b.name)!.push(`newest ${NEWEST_KEPT}`));

  const ref = retentionReference(real, now);
  if (ref) {
    for (const { tier, index, label } of TIERS) {
      const last = index(ref);
      const first = last - policy[tier] + 1;
      const seen = new Set<number>();
      for (const b of real) {
        const i = index(b.time);
        if (i < first || i > last || seen.has(i)) continue; // newest first: the first seen is the newest
        seen.add(i);
        reasons.get(b.name)!.push(`${tier} ${label(b.time)}`);
      }
    }
  }

  const verified = opts.offsiteVerified;
  const isVerified = typeof verified === "function" ? verified : (n: string) => verified?.has(n) ?? false;
  const offsite = real.find((b) => isVerified(b.name));
  if (offsite) reasons.get(offsite.name)!.push("off-site copy");

  return sorted.map((b) => {
    const why = reasons.get(b.name)!;
    return { name: b.name, key: b.key, keep: why.length > 0, reasons: why };
  });
}
