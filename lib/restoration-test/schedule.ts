// The quarterly restoration test's calendar (BACKUP_TESTING_SCHEDULE.md): the test days, the next
// one from a given day (weekends move to the Monday after) and the reminder that announces it.
import { BackupError } from "../backup";

/** Test days: the 15th of the first month of each quarter (month is 1-based). */
export const QUARTERLY_TEST_DAYS: readonly { month: number; day: number }[] = [
  { month: 1, day: 15 },
  { month: 4, day: 15 },
  { month: 7, day: 15 },
  { month: 10, day: 15 },
];

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Parses YYYY-MM-DD as a UTC date, refusing impossible dates (2027-02-30). */
export function parseDay(s: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!d || d.toISOString().slice(0, 10) !== s) throw new BackupError("INVALID_INPUT", `not a date (YYYY-MM-DD): ${s}`);
  return d;
}

export const isoDay = (d: Date) => d.toISOString().slice(0, 10);

export function quarterOf(d: Date): { year: number; quarter: number; label: string } {
  const year = d.getUTCFullYear();
  const quarter = Math.floor(d.getUTCMonth() / 3) + 1;
  return { year, quarter, label: `${year}-Q${quarter}` };
}

export interface NextTest {
  /** The scheduled test day, YYYY-MM-DD. */
  date: string;
  quarter: string;
  weekday: string;
  /** 0 on the day itself. */
  daysUntil: number;
  isToday: boolean;
  /** The 15th, or the Monday after when it falls on a weekend (the schedule's rule). */
  workingDay: string;
}

/** The next quarterly test on or after `today` (UTC): on a test day itself, that day. */
export function nextTestDate(today: Date | string): NextTest {
  const t = typeof today === "string" ? parseDay(today) : new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()));
  let next: Date | null = null;
  for (let year = t.getUTCFullYear(); !next; year++) {
    for (const { month, day } of QUARTERLY_TEST_DAYS) {
      const candidate = new Date(Date.UTC(year, month - 1, day));
      if (candidate.getTime() >= t.getTime()) {
        next = candidate;
        break;
      }
    }
  }
  const dow = next.getUTCDay();
  const shift = dow === 6 ? 2 : dow === 0 ? 1 : 0;
  const daysUntil = Math.round((next.getTime() - t.getTime()) / 86_400_000);
  return {
    date: isoDay(next),
    quarter: quarterOf(next).label,
    weekday: WEEKDAYS[dow],
    daysUntil,
    isToday: daysUntil === 0,
    workingDay: isoDay(new Date(next.getTime() + shift * 86_400_000)),
  };
}

export function reminderText(next: NextTest): string {
  const when = next.isToday
    ? `today (${next.weekday} ${next.date})`
    : `on ${next.weekday} ${next.date}, in ${next.daysUntil} day${next.daysUntil === 1 ? "" : "s"}`;
  const weekend = next.workingDay !== next.date ? ` It falls on a weekend: test on the next working day, ${next.workingDay}.` : "";
  return (
    `Quarterly backup restoration test (${next.quarter}) is due ${when}.${weekend} ` +
    "Run `bash scripts/test-restoration.sh` (add --remote <backup-name> for production backups), " +
    `commit the report it writes to docs/backup-tests/${next.quarter}-backup-test.md, and follow up any failed check. ` +
    "Procedure: BACKUP_TESTING_SCHEDULE.md."
  );
}
