// The pure retention rule (lib/backup/retention-plan.ts): which complete backups stay and why,
// at the edges of days, ISO weeks and months, with future-dated and off-site-protected backups,
// and the BACKUP_RETENTION setting. No bindings: a plan is a function of names, now and policy.
import { describe, expect, it } from "vitest";
import { backupNameFor, keysFor } from "../../lib/backup/keys";
import { parseRetentionSetting, planRetention, type RetentionPolicy } from "../../lib/backup";
import { DEFAULT_RETENTION, isoWeekLabel, parseRetentionPolicy } from "../../lib/backup/retention-plan";

const at = (iso: string) => new Date(iso);
const backup = (iso: string) => {
  const name = backupNameFor(at(iso));
  return { name, key: keysFor(name).object };
};
const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ ...DEFAULT_RETENTION, daily: 0, weekly: 0, monthly: 0, ...p });
/** name's date part → reasons, for readable expectations. */
const reasonsOf = (decisions: ReturnType<typeof planRetention>) =>
  Object.fromEntries(decisions.map((d) => [d.name.replace(/^database-/, ""), d.keep ? d.reasons : "delete"]));

describe("isoWeekLabel", () => {
  it.each([
    ["2026-01-01T00:00:00Z", "2026-W01"], // a Thursday: week 1 of 2026 starts Monday 2025-12-29
    ["2025-12-29T00:00:00Z", "2026-W01"],
    ["2025-12-28T23:59:59Z", "2025-W52"],
    ["2026-01-12T00:00:00Z", "2026-W03"],
    ["2026-12-28T00:00:00Z", "2026-W53"], // 2026 starts on a Thursday: it has 53 weeks
    ["2026-12-31T12:00:00Z", "2026-W53"],
    ["2027-01-01T00:00:00Z", "2026-W53"],
    ["2027-01-03T23:59:59Z", "2026-W53"],
    ["2027-01-04T00:00:00Z", "2027-W01"],
    ["2024-12-30T00:00:00Z", "2025-W01"], // a Monday in December already in next year's week 1
    ["2021-01-03T00:00:00Z", "2020-W53"],
    ["2020-12-31T00:00:00Z", "2020-W53"], // leap year starting on a Wednesday: 53 weeks
  ])("%s is %s", (iso, label) => {
    expect(isoWeekLabel(at(iso))).toBe(label);
  });
});

describe("planRetention", () => {
  it("fewer than 7 backups: all kept as the newest 7, whatever the tiers", () => {
    const backups = ["2020-01-01T02:00:00Z", "2021-06-01T02:00:00Z", "2023-03-03T02:00:00Z"].map(backup);
    const plan = planRetention(backups, at("2026-01-15T03:00:00Z"), policy({}));
    expect(plan.map((d) => d.name)).toEqual([...backups].reverse().map((b) => b.name)); // newest first
    expect(plan.every((d) => d.keep && d.reasons.join() === "newest 7")).toBe(true);
  });

  it("several backups in one day: the daily tier keeps only the newest of them", () => {
    const times = ["2026-01-10T00:00:00Z", "2026-01-10T02:00:00Z", "2026-01-10T23:59:59Z", "2026-01-11T00:00:00Z"];
    const older = Array.from({ length: 7 }, (_, i) => `2026-01-0${i + 1}T02:00:00Z`);
    const plan = planRetention([...older, ...times].map(backup), at("2026-01-11T12:00:00Z"), policy({ daily: 3 }));
    expect(reasonsOf(plan)).toEqual({
      "2026-01-11-00-00-00": ["newest 7", "daily 2026-01-11"],
      "2026-01-10-23-59-59": ["newest 7", "daily 2026-01-10"],
      "2026-01-10-02-00-00": ["newest 7"],
      "2026-01-10-00-00-00": ["newest 7"],
      "2026-01-07-02-00-00": ["newest 7"], // the last 3 days are 01-09 … 01-11, and 01-09 has no backup
      "2026-01-06-02-00-00": ["newest 7"],
      "2026-01-05-02-00-00": ["newest 7"],
      "2026-01-04-02-00-00": "delete",
      "2026-01-03-02-00-00": "delete",
      "2026-01-02-02-00-00": "delete",
      "2026-01-01-02-00-00": "delete",
    });
  });

  it("the ISO week-year boundary: 2026-12-31 and 2027-01-01 share 2026-W53, not a month", () => {
    // Seven newer backups first, so the two under test are decided by the tiers alone.
    const newer = Array.from({ length: 7 }, (_, i) => `2027-01-${String(10 + i).padStart(2, "0")}T02:00:00Z`);
    const plan = planRetention(
      ["2026-12-27T02:00:00Z", "2026-12-28T02:00:00Z", "2026-12-31T02:00:00Z", "2027-01-01T02:00:00Z", ...newer].map(backup),
      at("2027-01-16T12:00:00Z"),
      policy({ weekly: 4, monthly: 2 }),
    );
    const r = reasonsOf(plan);
    expect(r["2027-01-01-02-00-00"]).toEqual(["weekly 2026-W53"]); // newest of W53; 2027-01 goes to 01-16
    expect(r["2026-12-31-02-00-00"]).toEqual(["monthly 2026-12"]); // not W53's newest, but December's
    expect(r["2026-12-28-02-00-00"]).toBe("delete"); // W53, December: both taken by newer ones
    // 2026-12-27 is a Sunday, in W52: with the current week W02, the last 4 weeks are W53, W01, W02 and W52.
    expect(r["2026-12-27-02-00-00"]).toEqual(["weekly 2026-W52"]);
    expect(r["2027-01-16-02-00-00"]).toEqual(["newest 7", "weekly 2027-W02", "monthly 2027-01"]);
    expect(r["2027-01-10-02-00-00"]).toEqual(["newest 7", "weekly 2027-W01"]); // Sunday: last day of W01
  });

  it("month boundaries: the last second of January and the first of February are different months", () => {
    const newer = Array.from({ length: 7 }, (_, i) => `2026-03-0${i + 1}T02:00:00Z`);
    const plan = planRetention(
      ["2026-01-31T00:00:00Z", "2026-01-31T23:59:59Z", "2026-02-01T00:00:00Z", "2026-02-15T00:00:00Z", ...newer].map(backup),
      at("2026-03-08T00:00:00Z"),
      policy({ monthly: 3 }),
    );
    const r = reasonsOf(plan);
    expect(r["2026-01-31-23-59-59"]).toEqual(["monthly 2026-01"]);
    expect(r["2026-01-31-00-00-00"]).toBe("delete");
    expect(r["2026-02-15-00-00-00"]).toEqual(["monthly 2026-02"]);
    expect(r["2026-02-01-00-00-00"]).toBe("delete");
    // Two months back is the last: with monthly=2 January is out.
    const two = reasonsOf(planRetention(plan, at("2026-03-08T00:00:00Z"), policy({ monthly: 2 })));
    expect(two["2026-01-31-23-59-59"]).toBe("delete");
  });

  it("N days means the N days ending with the reference day, counted by UTC date", () => {
    const names = Array.from({ length: 40 }, (_, i) => backup(new Date(Date.UTC(2026, 0, 1 + i, 23, 30)).toISOString()));
    const plan = planRetention(names, at("2026-02-09T23:59:00Z"), policy({ daily: 30 }));
    const kept = plan.filter((d) => d.keep).map((d) => d.name);
    expect(kept).toHaveLength(30);
    expect(kept.at(-1)).toBe(backupNameFor(at("2026-01-11T23:30:00Z"))); // 2026-01-11 … 2026-02-09
    // Half an hour later it is another UTC day: the window moves only when a new backup arrives.
    const later = planRetention(names, at("2026-02-10T00:30:00Z"), policy({ daily: 30 }));
    expect(later.filter((d) => d.keep)).toHaveLength(30);
  });

  it("the reference is the newest backup when backups have been failing: nothing ages out meanwhile", () => {
    const names = Array.from({ length: 20 }, (_, i) => backup(new Date(Date.UTC(2026, 0, 1 + i, 2)).toISOString()));
    const keptAt = (now: string) => planRetention(names, at(now), policy({ daily: 10 })).filter((d) => d.keep).length;
    expect(keptAt("2026-01-20T03:00:00Z")).toBe(10);
    expect(keptAt("2026-06-01T00:00:00Z")).toBe(10); // months without a backup: still the last 10 days of backups
    // A clock behind the newest backups: those after it are future-dated (kept), the days count from the newest other one.
    expect(keptAt("2026-01-15T03:00:00Z")).toBe(5 + 10);
  });

  it("a future-dated backup is kept, takes no newest-7 place and moves no period", () => {
    const real = Array.from({ length: 10 }, (_, i) => backup(new Date(Date.UTC(2026, 0, 1 + i, 2)).toISOString()));
    const future = backup("2099-01-01T02:00:00Z");
    const plan = planRetention([future, ...real], at("2026-01-10T03:00:00Z"), policy({ daily: 2 }));
    expect(plan[0]).toEqual({ ...future, keep: true, reasons: ["future-dated"] });
    expect(plan.filter((d) => d.reasons.includes("newest 7")).map((d) => d.name)).toEqual(real.slice(3).reverse().map((b) => b.name));
    expect(reasonsOf(plan)["2026-01-10-02-00-00"]).toEqual(["newest 7", "daily 2026-01-10"]);
    expect(plan.filter((d) => !d.keep).map((d) => d.name)).toEqual(real.slice(0, 3).reverse().map((b) => b.name));
    // Within the tolerance (10 minutes) it is not future-dated: an ordinary newest backup.
    const soon = backup("2026-01-10T03:05:00Z");
    expect(planRetention([soon, ...real], at("2026-01-10T03:00:00Z"), policy({}))[0].reasons).toEqual(["newest 7"]);
  });

  it("keeps the newest backup with a verified off-site copy, and only that one", () => {
    const real = Array.from({ length: 30 }, (_, i) => backup(new Date(Date.UTC(2026, 0, 1 + i, 2)).toISOString()));
    const future = backup("2099-01-01T02:00:00Z");
    const verified = new Set([real[2].name, real[5].name, future.name]);
    const plan = planRetention([future, ...real], at("2026-01-30T03:00:00Z"), policy({}), { offsiteVerified: verified });
    const r = reasonsOf(plan);
    expect(r[real[5].name.slice(9)]).toEqual(["off-site copy"]);
    expect(r[real[2].name.slice(9)]).toBe("delete"); // an older verified one is not protected
    expect(r["2099-01-01-02-00-00"]).toEqual(["future-dated"]); // never "the newest" of anything
    expect(plan.filter((d) => d.keep)).toHaveLength(1 + 7 + 1);
    // A predicate works the same as a set; none given protects nothing.
    expect(planRetention(real, at("2026-01-30T03:00:00Z"), policy({}), { offsiteVerified: (n) => verified.has(n) })).toEqual(
      plan.filter((d) => d.name !== future.name),
    );
    expect(planRetention(real, at("2026-01-30T03:00:00Z"), policy({})).filter((d) => d.keep)).toHaveLength(7);
  });

  it("reasons accumulate: one backup can be newest, daily, weekly and monthly at once", () => {
    const [d] = planRetention([backup("2026-01-15T02:00:00Z")], at("2026-01-15T02:00:05Z"), DEFAULT_RETENTION);
    expect(d.reasons).toEqual(["newest 7", "daily 2026-01-15", "weekly 2026-W03", "monthly 2026-01"]);
  });

  it("an empty listing plans nothing; an invalid now is refused", () => {
    expect(planRetention([], at("2026-01-15T02:00:00Z"), DEFAULT_RETENTION)).toEqual([]);
    expect(() => planRetention([], new Date(NaN), DEFAULT_RETENTION)).toThrow(/invalid date/);
  });
});

describe("BACKUP_RETENTION", () => {
  it.each([
    [undefined, { daily: 30, weekly: 12, monthly: 24 }],
    ["", { daily: 30, weekly: 12, monthly: 24 }],
    ["daily=30,weekly=12,monthly=24", { daily: 30, weekly: 12, monthly: 24 }],
    [" daily = 7 , monthly=120 ", { daily: 7, weekly: 12, monthly: 120 }],
    ["weekly=0", { daily: 30, weekly: 0, monthly: 24 }],
    ["daily=3660,weekly=520,monthly=1200", { daily: 3660, weekly: 520, monthly: 1200 }],
  ])("%j is %j", (raw, tiers) => {
    const parsed = parseRetentionSetting(raw);
    expect(parsed.problem).toBeNull();
    expect(parsed.policy).toEqual({ ...DEFAULT_RETENTION, ...tiers });
  });

  it.each([
    ["daily=30;weekly=12", /malformed entry "daily=30;weekly=12"/],
    ["daily=-1", /malformed/],
    ["daily=1.5", /malformed/],
    ["daily=", /malformed/],
    ["daily=30,", /malformed entry ""/],
    ["Daily=30", /malformed/],
    ["yearly=5", /unknown key "yearly"/],
    ["keepLatest=1", /malformed/],
    ["incompleteMaxAgeHours=1", /malformed/],
    ["daily=1,daily=2", /sets daily twice/],
    ["daily=3661", /daily=3661 is more than 3660/],
    ["monthly=99999", /more than 1200/],
  ])("%j is refused: %s", (raw, message) => {
    const parsed = parseRetentionSetting(raw);
    expect(parsed.policy).toBeNull();
    expect(parsed.problem).toMatch(message);
    expect(parsed.problem).toMatch(/^BACKUP_RETENTION .*\(expected e\.g\. daily=30,weekly=12,monthly=24/);
  });

  it("the library's policy parse refuses the old fields and out-of-range values with INVALID_INPUT", () => {
    for (const bad of [{ maxAgeDays: 30 }, { keepLatest: 7 }, { daily: -1 }, { weekly: 1.5 }, { monthly: 1201 }, { daily: "30" }, { incompleteMaxAgeHours: 0 }]) {
      expect(() => parseRetentionPolicy(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    }
  });
});
