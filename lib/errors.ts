// One typed error for the whole backup system. Every failure carries a stable code that the
// API maps to an HTTP status, so routes never invent statuses and callers can branch on codes.
// It sits at lib/ (not in lib/backup) because every layer throws it, lib/sql included, and
// lib/sql must not depend on the backup library that is built on it.

export const ERROR_STATUS = {
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  BACKUP_EXISTS: 409,
  BACKUP_IN_PROGRESS: 409,
  // This run's lease expired without a renewal and another run may hold it now: it stopped itself.
  LEASE_LOST: 409,
  TARGET_NOT_EMPTY: 409,
  UNSUPPORTED_SCHEMA: 422,
  INTEGRITY_ERROR: 422,
  CONFIG_ERROR: 500,
  // This process's clock and D1's disagree by minutes: lease times and backup names would be wrong.
  CLOCK_SKEW: 500,
  // Logged, never thrown: a run that died holding its lease, found by the run that took it over.
  INTERRUPTED: 500,
  DATABASE_ERROR: 502,
  // Writes never stopped long enough for a consistent read: try again later.
  DATABASE_BUSY: 503,
  STORAGE_ERROR: 502,
  STORAGE_FULL: 507,
  INTERNAL: 500,
} as const;

export type BackupErrorCode = keyof typeof ERROR_STATUS;

export class BackupError extends Error {
  readonly code: BackupErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(
    code: BackupErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BackupError";
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export function isBackupError(e: unknown): e is BackupError {
  return e instanceof BackupError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Wraps a failure from a binding so the caller learns which side (D1 or R2) failed, and why. */
export function wrapBindingError(kind: "DATABASE_ERROR" | "STORAGE_ERROR", what: string, e: unknown): BackupError {
  if (isBackupError(e)) return e;
  const message = errorMessage(e);
  // R2 reports quota problems in its message; an admin needs to see "bucket full", not a generic 502.
  const code = kind === "STORAGE_ERROR" && /quota|storage limit|insufficient storage|no space/i.test(message)
    ? "STORAGE_FULL"
    : kind;
  return new BackupError(code, `${what}: ${message}`, { cause: e });
}
