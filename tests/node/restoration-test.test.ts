// lib/restoration-test without running a restore: the schedule (next test day, weekends, the
// reminder's text) and the report template agreeing with the values the run fills in.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../lib/local/platform";
import { nextTestDate, quarterOf, reminderText, renderTemplate } from "../../lib/restoration-test";

describe("restoration test schedule", () => {
  it.each([
    ["2026-12-31", "2027-01-15", 15, false],
    ["2027-01-15", "2027-01-15", 0, true],
    ["2027-01-16", "2027-04-15", 89, false],
    ["2027-04-14", "2027-04-15", 1, false],
    ["2027-07-15", "2027-07-15", 0, true],
    ["2027-10-16", "2028-01-15", 91, false],
    ["2028-02-29", "2028-04-15", 46, false],
  ])("on %s the next test is %s (%i days)", (today, date, days, isToday) => {
    const next = nextTestDate(today);
    expect(next).toMatchObject({ date, daysUntil: days, isToday });
    expect(next.quarter).toBe(quarterOf(new Date(`${date}T00:00:00Z`)).label);
  });

  it("moves a weekend test day to the Monday after, in the text", () => {
    const next = nextTestDate("2028-01-10"); // 2028-01-15 is a Saturday
    expect(next).toMatchObject({ date: "2028-01-15", weekday: "Saturday", workingDay: "2028-01-17" });
    expect(reminderText(next)).toMatch(/on Saturday 2028-01-15, in 5 days\. It falls on a weekend: test on the next working day, 2028-01-17\./);
  });
});

describe("restoration test report", () => {
  it("the report template and the script agree on every placeholder", () => {
    const template = fs.readFileSync(path.join(PROJECT_ROOT, "docs", "backup-tests", "test-report-template.md"), "utf8");
    expect(() => renderTemplate(template, {})).toThrow(/placeholders with no value: QUARTER, /);
  });
});
