// How many D1 queries a drill may spend, what it expects to spend, and what it did spend.
//
// D1 allows 1,000 queries per Worker invocation on Workers Paid, 50 on Free, listed as "Queries
// per Worker invocation (read subrequest limits)" (https://developers.cloudflare.com/d1/platform/limits/).
// The page ties that limit to subrequests, and one batch() is one call to the binding; it does
// not say whether each statement inside a batch counts. What it does say is that "limits for
// individual queries apply to each individual statement contained within a batch statement"
// (100 KB per statement). So a batch() is counted as one query here, and every statement in it
// is kept under 100 KB; RESTORE_DRILL_MAX_QUERIES lowers the budget if a plan counts otherwise.
import type { Manifest } from "../backup";

export const DEFAULT_MAX_QUERIES = 1000;

export interface DrillBudget {
  /** Queries the whole invocation may make (RESTORE_DRILL_MAX_QUERIES; default 1,000). */
  maxQueries: number;
  /** Bytes of SQL per replay batch(): a batch is one query, and one round trip. */
  batchBytes: number;
  /** Statements per replay batch(), whatever their size. */
  batchStatements: number;
}

export const DEFAULT_BUDGET: DrillBudget = {
  maxQueries: DEFAULT_MAX_QUERIES,
  // 1 MiB of 16 KB statements: about 64 per batch, well inside D1's 30 s per call.
  batchBytes: 1024 * 1024,
  batchStatements: 200,
};

/** RESTORE_DRILL_MAX_QUERIES, parsed at the entry point. Unset: the Paid plan's 1,000. */
export function parseDrillBudget(text: string | undefined | null): { budget: DrillBudget; problem: string | null } {
  if (text === undefined || text === null || text.trim() === "") return { budget: DEFAULT_BUDGET, problem: null };
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    return { budget: DEFAULT_BUDGET, problem: `RESTORE_DRILL_MAX_QUERIES must be a positive integer (got "${text}"); using ${DEFAULT_MAX_QUERIES}` };
  }
  return { budget: { ...DEFAULT_BUDGET, maxQueries: n }, problem: null };
}

/**
 * Queries the nightly run spent before the drill (the backup, its lease, retention, logs), from
 * its manifest: each attempt's reads, the schema reads (about 4 per table), and a margin for the
 * lease, R2-side cleanup logs and the alerts that may follow the drill.
 */
export function estimateRunQueries(manifest: Manifest): number {
  const reads = (manifest.snapshot.reads ?? 2) * (manifest.snapshot.attempts ?? 1);
  return reads + 4 * manifest.schema.tables + 40;
}

/** Queries the drill itself will make for this backup: guard, emptying, replay, re-read, checks, log. */
export function estimateDrillQueries(manifest: Manifest, budget: DrillBudget): number {
  const batches = Math.ceil(manifest.sql.size / budget.batchBytes) + Math.ceil(manifest.sql.statements / budget.batchStatements);
  // The re-read of the restored database costs what the backup's read did.
  const reread = (manifest.snapshot.reads ?? 2) + 4 * manifest.schema.tables + 4;
  return 8 + batches + reread + 3;
}

/** A query count went over the budget in the middle of the drill. */
export class OverBudget extends Error {
  constructor(
    readonly spent: number,
    readonly limit: number,
  ) {
    super(`the drill spent ${spent} queries, over its budget of ${limit}`);
  }
}

/**
 * The binding with every query counted: a statement's first/all/run/raw, a batch() or exec() is
 * one. Statements made through it are unwrapped again before they reach batch().
 */
export function countingDatabase(db: D1Database, onQuery: () => void): D1Database {
  const real = new WeakMap<object, D1PreparedStatement>();
  const wrap = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (prop === "first" || prop === "all" || prop === "run" || prop === "raw") {
          return (...args: unknown[]) => {
            onQuery();
            return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    real.set(proxy, stmt);
    return proxy;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql));
      if (prop === "batch") {
        return (stmts: D1PreparedStatement[]) => {
          onQuery();
          return target.batch(stmts.map((s) => real.get(s) ?? s));
        };
      }
      if (prop === "exec") {
        return (sql: string) => {
          onQuery();
          return target.exec(sql);
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
