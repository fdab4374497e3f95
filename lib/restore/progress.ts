// Progress and timings on stderr, so stdout stays the result (human or JSON) a script can read.
// Every step is timed: the sum is the recovery time (RTO) the quarterly test reports.

export interface StepTiming {
  step: string;
  ms: number;
  ok: boolean;
}

export interface Reporter {
  /** Runs and times one step; the timing is kept even when the step fails. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** A progress line for the running step (throttled; overwritten in place on a terminal). */
  progress(text: string): void;
  info(text: string): void;
  /** Something a person must see (an unverified backup being restored): printed even with --quiet. */
  warn(text: string): void;
  readonly timings: StepTiming[];
  /** Milliseconds since the reporter was made. */
  elapsed(): number;
}

export interface ReporterOptions {
  /** Where lines go (default: process.stderr). */
  write?: (text: string) => void;
  quiet?: boolean;
  /** Overwrite progress in place (default: stderr is a terminal). */
  tty?: boolean;
  /** Minimum time between progress lines (default 250 ms on a terminal, 5 s otherwise). */
  intervalMs?: number;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function createReporter(opts: ReporterOptions = {}): Reporter {
  const write = opts.write ?? ((t: string) => process.stderr.write(t));
  const tty = opts.tty ?? !!process.stderr.isTTY;
  const interval = opts.intervalMs ?? (tty ? 250 : 5000);
  const started = Date.now();
  const timings: StepTiming[] = [];
  let lastProgress = 0;
  let pendingLine = false;
  let current: { name: string; start: number } | null = null;

  const endLine = () => {
    if (pendingLine) write("\n");
    pendingLine = false;
  };

  return {
    timings,
    elapsed: () => Date.now() - started,
    info(text) {
      if (opts.quiet) return;
      endLine();
      write(`${text}\n`);
    },
    warn(text) {
      endLine();
      write(`${text}\n`);
    },
    progress(text) {
      if (opts.quiet) return;
      const now = Date.now();
      if (now - lastProgress < interval) return;
      lastProgress = now;
      const since = current ? ` [${formatMs(now - current.start)}]` : "";
      if (tty) {
        write(`\r  ${text}${since}\x1b[K`);
        pendingLine = true;
      } else write(`  ${text}${since}\n`);
    },
    async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const start = Date.now();
      current = { name, start };
      lastProgress = start; // the first progress line comes one interval into the step
      if (!opts.quiet) {
        endLine();
        write(`→ ${name}…\n`);
      }
      let ok = false;
      try {
        const value = await fn();
        ok = true;
        return value;
      } finally {
        const ms = Date.now() - start;
        timings.push({ step: name, ms, ok });
        current = null;
        if (!opts.quiet) {
          endLine();
          write(`${ok ? "✓" : "✗"} ${name} (${formatMs(ms)})\n`);
        }
      }
    },
  };
}

/** A reporter that prints nothing (library callers and tests that only want the timings). */
export function silentReporter(): Reporter {
  return createReporter({ quiet: true, write: () => {} });
}
