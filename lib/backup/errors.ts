// Transitional: the typed error now lives in lib/errors.ts (lib/sql throws it too, and lib/sql must
// not depend on lib/backup). Kept only for files being moved in parallel (app/, lib/http.ts,
// lib/env.ts, monitoring, quarterly); delete once they import ../errors.
export * from "../errors";
