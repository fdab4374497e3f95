// Child processes for the restore tooling: the project's pinned wrangler and the sqlite3 CLI.
// Asynchronous (never execFileSync) so progress can be printed while a long restore runs, and
// with the non-interactive environment wrangler needs in scripts and CI.
import { spawn } from "node:child_process";
import fs from "node:fs";
import type { Readable } from "node:stream";
import { PROJECT_ROOT, WRANGLER_BIN, wranglerEnv } from "../local";
import { trackChild } from "./cleanup";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Text or a stream piped into stdin (then closed). */
  input?: string | Readable;
  /** Called with each stdout chunk; stdout is then not kept (for large outputs). */
  onStdout?: (chunk: Buffer) => void;
  /** Keep at most this much of stdout/stderr (the tail); errors quote the end, where the message is. */
  maxKeep?: number;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const maxKeep = opts.maxKeep ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? PROJECT_ROOT, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    trackChild(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    const keep = (list: Buffer[], chunk: Buffer, len: number): number => {
      list.push(chunk);
      len += chunk.length;
      while (len > maxKeep && list.length > 1) len -= list.shift()!.length;
      return len;
    };
    child.stdout.on("data", (c: Buffer) => {
      if (opts.onStdout) opts.onStdout(c);
      else outLen = keep(out, c, outLen);
    });
    child.stderr.on("data", (c: Buffer) => {
      errLen = keep(err, c, errLen);
    });
    child.on("error", reject);
    // A child that exits early (sqlite3 -bail) closes stdin under us: that is reported by the
    // exit code and stderr, not as an EPIPE crash of this process.
    child.stdin.on("error", () => {});
    if (typeof opts.input === "string") child.stdin.end(opts.input);
    else if (opts.input) {
      opts.input.on("error", (e) => child.stdin.destroy(e));
      opts.input.pipe(child.stdin);
    } else child.stdin.end();
    child.on("close", (code, signal) => {
      // Stop reading the input a child gave up on (sqlite3 -bail at the first error).
      if (opts.input && typeof opts.input !== "string") opts.input.destroy();
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}

/** Removes ANSI colour codes and wrangler's decorations so its message can be quoted in ours. */
export function cleanToolOutput(text: string): string {
  return text
    // eslint-disable-next-line no-control-regex
    .replace(/\x1b\[[0-9;]*m/g, "")
    .split("\n")
    .map((l) => l.replace(/^\s*✘\s*\[ERROR\]\s*/, "").trimEnd())
    .filter((l) => l.trim() !== "" && !/^🪵|Logs were written to|npm warn/.test(l))
    .join("\n")
    .trim();
}

export function wrangler(args: string[], opts: Omit<RunOptions, "env" | "cwd"> = {}): Promise<RunResult> {
  return run(WRANGLER_BIN, args, { ...opts, cwd: PROJECT_ROOT, env: wranglerEnv() });
}

/** The command a person would type for these wrangler arguments (quoted for a POSIX shell). */
export function wranglerCommand(args: string[]): string {
  return ["npx", "wrangler", ...args].map(shellQuote).join(" ");
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function fileExists(file: string): boolean {
  try {
    fs.accessSync(file);
    return true;
  } catch {
    return false;
  }
}
