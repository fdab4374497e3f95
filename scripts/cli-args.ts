// The flag parsing of the small CLIs (seed, bench): --help prints the usage and exits 0; an unknown
// flag or a bad value is one line on stderr and exit 2 (a usage error), never a stack trace.
import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCli<O extends Options>(name: string, usage: string, options: O): ReturnType<typeof parseArgs<{ options: O }>>["values"] {
  let parsed: { values: Record<string, unknown> };
  try {
    parsed = parseArgs({ options: { ...options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false });
  } catch (e) {
    // node's messages are one line already ("Unknown option '--x'"); drop its advice about "--".
    const msg = (e instanceof Error ? e.message : String(e)).split(". To specify")[0];
    usageExit(name, msg);
  }
  if (parsed.values.help) {
    console.log(usage.trim());
    process.exit(0);
  }
  return parsed.values as never;
}

export function usageExit(name: string, message: string): never {
  console.error(`${name}: ${message} (see --help)`);
  process.exit(2);
}

/** A whole number in [min, max] from a flag's text, or a usage error naming the flag. */
export function intFlag(name: string, flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    usageExit(name, `${flag} takes a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")} (got ${JSON.stringify(value)})`);
  }
  return n;
}
