// OFFSITE_S3_*: where the off-site copy goes, parsed once at each entry point (lib/env.ts, the cron
// Worker, lib/local/worker.ts, scripts/restore.ts) and handed down. Never throws: none set means
// off-site copies are off; a partial or unusable set is a `problem` naming the settings (never a
// value), which the backup run reports as offsite_copy_failed instead of losing the R2 backup.
import { BACKUP_PREFIX } from "../names";

export const OFFSITE_SETTINGS = [
  "OFFSITE_S3_ENDPOINT",
  "OFFSITE_S3_BUCKET",
  "OFFSITE_S3_REGION",
  "OFFSITE_S3_ACCESS_KEY_ID",
  "OFFSITE_S3_SECRET_ACCESS_KEY",
] as const;

export interface OffsiteConfig {
  /** The endpoint as given (scheme + host [+ port]), without a trailing slash. */
  endpoint: string;
  /** host[:port] of the endpoint: what manifests and the dashboard name (never a credential). */
  endpointHost: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Key prefix in the off-site bucket, ending in "/"; the R2 key names (lib/backup/keys.ts) go under it. */
  prefix: string;
  /** https://endpoint/bucket/key instead of https://bucket.endpoint/key. */
  pathStyle: boolean;
}

export interface OffsiteSetting {
  config: OffsiteConfig | null;
  problem: string | null;
}

const IP_OR_LOCAL = /^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:]+\])$/i;
// S3's bucket naming rules (3–63 lowercase letters, digits, dots, hyphens), which B2, Wasabi, MinIO and R2 share.
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses the OFFSITE_S3_* settings, read through `get` (env object, process.env, .dev.vars). */
export function parseOffsiteConfig(get: (name: string) => string | undefined): OffsiteSetting {
  const value = (name: string) => (get(name) ?? "").trim();
  const missing = OFFSITE_SETTINGS.filter((n) => !value(n));
  if (missing.length === OFFSITE_SETTINGS.length) {
    const extra = ["OFFSITE_S3_PREFIX", "OFFSITE_S3_PATH_STYLE"].filter((n) => value(n));
    return extra.length
      ? { config: null, problem: `off-site copy misconfigured: ${extra.join(" and ")} set but none of ${OFFSITE_SETTINGS.join(", ")}` }
      : { config: null, problem: null };
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`${missing.join(", ")} not set (set all of ${OFFSITE_SETTINGS.join(", ")}, or none)`);
  let endpoint: URL | null = null;
  if (value("OFFSITE_S3_ENDPOINT")) {
    try {
      endpoint = new URL(value("OFFSITE_S3_ENDPOINT"));
    } catch {
      endpoint = null;
    }
    if (!endpoint || !/^https?:$/.test(endpoint.protocol) || (endpoint.pathname !== "/" && endpoint.pathname !== "") || endpoint.search || endpoint.username) {
      problems.push("OFFSITE_S3_ENDPOINT must be an http(s) URL with no path, like https://s3.eu-central-1.amazonaws.com");
      endpoint = null;
    }
  }
  const bucket = value("OFFSITE_S3_BUCKET");
  if (bucket && !BUCKET_RE.test(bucket)) problems.push("OFFSITE_S3_BUCKET is not a bucket name (3–63 lowercase letters, digits, dots, hyphens)");
  let prefix = get("OFFSITE_S3_PREFIX")?.trim() || BACKUP_PREFIX;
  if (!prefix.endsWith("/")) prefix += "/";
  if (prefix.startsWith("/") || !/^[A-Za-z0-9._\-/]+$/.test(prefix) || prefix.includes("//")) {
    problems.push("OFFSITE_S3_PREFIX must be a relative key prefix like backups/ or d1/portal/ (letters, digits, . _ - /)");
  }
  const pathStyleText = value("OFFSITE_S3_PATH_STYLE").toLowerCase();
  if (pathStyleText && !["true", "false", "1", "0"].includes(pathStyleText)) problems.push("OFFSITE_S3_PATH_STYLE must be true or false");
  if (problems.length || !endpoint) return { config: null, problem: `off-site copy misconfigured: ${problems.join("; ")}` };
  const pathStyle = pathStyleText ? pathStyleText === "true" || pathStyleText === "1" : IP_OR_LOCAL.test(endpoint.hostname) || bucket.includes(".");
  return {
    config: {
      endpoint: endpoint.origin,
      endpointHost: endpoint.host,
      bucket,
      region: value("OFFSITE_S3_REGION"),
      accessKeyId: value("OFFSITE_S3_ACCESS_KEY_ID"),
      secretAccessKey: value("OFFSITE_S3_SECRET_ACCESS_KEY"),
      prefix,
      pathStyle,
    },
    problem: null,
  };
}

/** The off-site key of an R2 backup key: the same name under the configured prefix. */
export function offsiteKeyFor(config: OffsiteConfig, r2Key: string): string {
  if (!r2Key.startsWith(BACKUP_PREFIX)) throw new TypeError(`not a backup key: ${r2Key}`);
  return config.prefix + r2Key.slice(BACKUP_PREFIX.length);
}

/** The R2 key an off-site key stands for, or null when it is not under the prefix. */
export function r2KeyFor(config: OffsiteConfig, offsiteKey: string): string | null {
  return offsiteKey.startsWith(config.prefix) ? BACKUP_PREFIX + offsiteKey.slice(config.prefix.length) : null;
}
