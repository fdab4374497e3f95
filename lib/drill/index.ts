// The nightly restore drill: restore the newest backup into a scratch D1 database and check it
// against its manifest (drill.ts), within the invocation's query budget (budget.ts), never into the
// portal's database (guard.ts). Replay and checks are library functions over a binding and a stream.
export { runRestoreDrill, type DrillOptions, type DrillOutcome, type DrillResult } from "./drill";
export { DEFAULT_BUDGET, parseDrillBudget, type DrillBudget } from "./budget";
export { DRILL_MARKER_TABLE } from "./guard";
