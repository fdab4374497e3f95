// A Node built-in where the runtime has one (workerd with nodejs_compat, Node), looked up at run
// time with process.getBuiltinModule, never imported: Next's edge bundler (the Pages build)
// refuses `node:` imports, and there the callers fall back to web APIs.
export function nodeBuiltin<T>(id: `node:${string}`, has: (mod: T) => boolean): T | null {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (typeof get !== "function") return null;
  try {
    const mod = get(id) as T | undefined;
    return mod && has(mod) ? mod : null;
  } catch {
    return null;
  }
}
