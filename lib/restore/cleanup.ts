// No plaintext left behind. A restore's downloads, decompressed SQL and scratch databases hold every
// client's data, so they live in one private directory (0700) named after the process,
// `d1-backup-restore-<pid>-<random>`, removed on every exit path. The CLIs also remove it on
// SIGINT/SIGTERM (installSignalCleanup), and a later run removes what a killed run (SIGKILL, a
// crash: its pid is dead) left, saying so. `<target>.restoring-<pid>` files are treated alike.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const WORKDIR_PREFIX = "d1-backup-restore-";
const WORKDIR_RE = /^d1-backup-restore-(\d+)-[0-9a-f]+$/;

/** Paths this process must remove if it is interrupted (work directories, half-built targets). */
const owned = new Set<string>();
/** Children (sqlite3, wrangler) to stop first, so none writes on into a removed directory. */
const children = new Set<ChildProcess>();

export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once("close", () => children.delete(child));
}

export function own(p: string): void {
  owned.add(p);
}

/** Removes a path this process made and stops tracking it. */
export function release(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
  owned.delete(p);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user; only ESRCH means it is gone.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function sizeOf(p: string): number {
  try {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return st.size;
    return fs.readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0);
  } catch {
    return 0;
  }
}

export interface Leftover {
  path: string;
  pid: number;
  bytes: number;
}

/** Removes the work directories of dead restore processes under root; returns what was removed. */
export function sweepWorkDirs(root: string): Leftover[] {
  return sweepDead(root, WORKDIR_RE, (p) => fs.rmSync(p, { recursive: true, force: true }));
}

/** Removes `<file>.restoring-<pid>` (and its journal) left by dead processes beside a SQLite target. */
export function sweepRestoring(file: string): Leftover[] {
  const re = new RegExp(`^${path.basename(file).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.restoring-(\\d+)(?:-journal|-wal|-shm)?$`);
  return sweepDead(path.dirname(file), re, (p) => fs.rmSync(p, { force: true }));
}

/** The entries of `dir` whose name matches `re` (group 1: the pid) and whose process is dead, removed. */
function sweepDead(dir: string, re: RegExp, remove: (p: string) => void): Leftover[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: Leftover[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const p = path.join(dir, name);
    removed.push({ path: p, pid: Number(m[1]), bytes: sizeOf(p) });
    remove(p);
  }
  return removed;
}

/** A new private work directory under root (0700: other users on the machine cannot read it). */
export function makeWorkDir(root: string): string {
  const dir = path.join(root, `${WORKDIR_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  fs.mkdirSync(root, { recursive: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chmodSync(dir, 0o700); // mkdir's mode is masked by the umask; this is not
  own(dir);
  return dir;
}

let installed = false;

/**
 * For CLIs: on SIGINT/SIGTERM stop the children, remove every owned path, and exit 130/143 (the
 * shell's 128 + signal). Not for libraries or test runners, whose process is not theirs to end.
 */
export function installSignalCleanup(onSignal?: (signal: NodeJS.Signals) => void): void {
  if (installed) return;
  installed = true;
  const removeAll = () => {
    for (const p of owned) fs.rmSync(p, { recursive: true, force: true });
  };
  const handler = (signal: NodeJS.Signals, code: number) => {
    // SIGTERM: wrangler then stops its workerd; a half-done local import is rolled back by SQLite.
    for (const c of children) c.kill("SIGTERM");
    removeAll();
    onSignal?.(signal);
    process.exit(code);
  };
  // First in line: wrangler's local runtime listens for signals too and exits 0 on its own.
  process.prependListener("SIGINT", () => handler("SIGINT", 130));
  process.prependListener("SIGTERM", () => handler("SIGTERM", 143));
  // And whoever calls process.exit(), nothing owned outlives the process.
  process.on("exit", removeAll);
}
