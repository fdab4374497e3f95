// The quarterly restoration test: its schedule and reminder, the run, and its report. Node only
// (it drives wrangler and sqlite3 through lib/restore). scripts/restoration-test.ts and
// scripts/send-test-reminder.ts are thin CLIs over it.
export { isoDay, nextTestDate, quarterOf, reminderText, type NextTest } from "./schedule";
export { runRestorationTest, type RestorationTestOptions, type RestorationTestResult } from "./run";
export { renderTemplate } from "./report";
