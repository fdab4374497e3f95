// The only place that reads configuration and bindings for the Next.js app (routes + middleware).
// Everything is validated with zod, in three independent groups, so one missing setting only breaks
// what needs it: a deploy without CRON_SECRET must still serve the admin API, and a broken D1
// binding must still let the middleware answer 401 to strangers. Every problem becomes a
// BackupError CONFIG_ERROR (HTTP 500) that names the variable or binding, never its value.
//
// Sources: bindings come from the Cloudflare request context (`getRequestContext()`: Pages in
// production, `wrangler pages dev`, or `next dev` through setupDevPlatform in next.config.js).
// String settings come from the same env (Pages secrets/vars, .dev.vars) or, failing that, from
// process.env (the shell or .env.local under `next dev`). Nothing here holds a client: bindings are
// looked up per request and handed to the library.
import { getRequestContext } from "@cloudflare/next-on-pages";
import { z } from "zod";
import { parseAgeRecipients, parseLeaseTtl, parseRetentionSetting, parseSigningKey, type AgeEncryption, type ParsedRetention, type RetentionPolicy, type SigningKey } from "./backup";
import { BackupError } from "./errors";
import { parseAlertWebhook, type AlertWebhook } from "./monitor";
import { offsiteStep, parseOffsiteConfig, type OffsiteSetting } from "./offsite";
import type { OffsiteStep, RunSettings } from "./backup";
import { BUCKET_NAME, DATABASE_NAME } from "./names";

type RawEnv = Record<string, unknown>;

function requestEnv(): RawEnv {
  try {
    return getRequestContext().env as unknown as RawEnv;
  } catch (e) {
    // Outside a Cloudflare request context (a Node runtime route, or next dev without
    // setupDevPlatform) there are no bindings at all.
    throw new BackupError(
      "CONFIG_ERROR",
      "no Cloudflare request context: routes must use the edge runtime, and `next dev` needs setupDevPlatform (next.config.js)",
      { cause: e },
    );
  }
}

function stringSetting(env: RawEnv, name: string): string | undefined {
  const fromEnv = env[name];
  if (typeof fromEnv === "string") return fromEnv;
  const fromProcess = typeof process !== "undefined" ? process.env?.[name] : undefined;
  return typeof fromProcess === "string" ? fromProcess : undefined;
}

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return false;
  return methods.every((m) => typeof (value as Record<string, unknown>)[m] === "function");
}

const D1_METHODS = ["prepare", "batch", "exec"] as const;
const R2_METHODS = ["head", "get", "put", "list", "delete", "createMultipartUpload"] as const;

const bindingsSchema = z.object({
  DB: z.custom<D1Database>((v) => hasMethods(v, D1_METHODS), {
    message: `binding DB is missing or is not a D1 database (D1 ${DATABASE_NAME}; see wrangler.toml)`,
  }),
  DOCUMENTS: z.custom<R2Bucket>((v) => hasMethods(v, R2_METHODS), {
    message: `binding DOCUMENTS is missing or is not an R2 bucket (R2 ${BUCKET_NAME}; see wrangler.toml)`,
  }),
});

// Clerk's PEM loader (loadClerkJwkFromPem) only understands the SPKI PEM of a 2048-bit RSA key,
// which is what the Clerk dashboard shows as "JWT public key" (API keys → Show JWT public key).
const PEM_RE = /^-----BEGIN PUBLIC KEY-----\s*[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----\s*$/;
// pk_test_/pk_live_ + base64("<frontend api host>$"), as @clerk/shared's isPublishableKey checks.
function isPublishableKey(v: string): boolean {
  const m = /^pk_(test|live)_([A-Za-z0-9+/]+={0,2})$/.exec(v);
  if (!m) return false;
  try {
    const decoded = atob(m[2]);
    return decoded.endsWith("$") && !decoded.slice(0, -1).includes("$") && decoded.includes(".");
  } catch {
    return false;
  }
}

const nonEmpty = (name: string) =>
  z.string({ required_error: `${name} is not set` }).trim().min(1, `${name} is empty`);

const clerkSchema = z.object({
  CLERK_PUBLISHABLE_KEY: nonEmpty("CLERK_PUBLISHABLE_KEY (or NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY)").refine(isPublishableKey, {
    message: "CLERK_PUBLISHABLE_KEY is not a Clerk publishable key (pk_test_/pk_live_ + base64 of '<frontend api host>$')",
  }),
  // Clerk's SDK refuses to run without it (it signs the auth headers the middleware hands to
  // routes, and calls the Backend API for browser handshakes). API tokens never need it: they
  // are verified with CLERK_JWT_KEY.
  CLERK_SECRET_KEY: nonEmpty("CLERK_SECRET_KEY"),
  CLERK_JWT_KEY: nonEmpty("CLERK_JWT_KEY")
    // .dev.vars and dashboards often carry the PEM on one line with literal "\n".
    .transform((v) => v.replace(/\\n/g, "\n"))
    .refine((v) => PEM_RE.test(v), {
      message: "CLERK_JWT_KEY is not a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)",
    }),
  CLERK_AUTHORIZED_PARTIES: z
    .string()
    .optional()
    .transform((v) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean))
    .refine((list) => list.every((o) => /^https?:\/\/[^/\s]+$/.test(o)), {
      message: "CLERK_AUTHORIZED_PARTIES must be a comma-separated list of origins like https://portal.example.com",
    }),
});

// 32 characters is what `openssl rand -hex 16` gives; anything shorter is guessable in practice
// and refused like an unset secret, so a placeholder never protects the endpoint.
export const MIN_CRON_SECRET_LENGTH = 32;
const cronSchema = z.object({
  CRON_SECRET: nonEmpty("CRON_SECRET").refine((v) => v.length >= MIN_CRON_SECRET_LENGTH, {
    message: `CRON_SECRET is shorter than ${MIN_CRON_SECRET_LENGTH} characters`,
  }),
});

export type Bindings = { db: D1Database; bucket: R2Bucket };
export type ClerkConfig = {
  publishableKey: string;
  secretKey: string;
  jwtKey: string;
  /** Empty: azp is not checked (Clerk's default). */
  authorizedParties: string[];
};
export type CronConfig = { cronSecret: string };

function configError(group: string, error: z.ZodError): BackupError {
  const problems = error.issues.map((i) => i.message);
  return new BackupError("CONFIG_ERROR", `${group} misconfigured: ${problems.join("; ")}`, { details: { problems } });
}

// Validated once per env object: Pages hands every request the same env within an isolate, so
// this parses each group once there; a different env object (tests, dev restarts) is parsed anew.
const cache = new WeakMap<object, Map<string, unknown>>();
function once<T>(env: RawEnv, group: string, parse: () => T): T {
  let entry = cache.get(env);
  if (!entry) cache.set(env, (entry = new Map()));
  if (!entry.has(group)) entry.set(group, parse());
  return entry.get(group) as T;
}

/** D1 (DB) and R2 (DOCUMENTS) for this request. */
export function getBindings(): Bindings {
  const env = requestEnv();
  return once(env, "bindings", () => {
    const parsed = bindingsSchema.safeParse({ DB: env.DB, DOCUMENTS: env.DOCUMENTS });
    if (!parsed.success) throw configError("Cloudflare bindings", parsed.error);
    return { db: parsed.data.DB, bucket: parsed.data.DOCUMENTS };
  });
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * "Deployed" means: the request came for a host other than loopback. Cloudflare only routes a
 * request to the project for its own hostnames, so a deployed portal never sees a loopback host;
 * only `wrangler pages dev` / `next dev` on this machine do. (CF_PAGES is no signal: `wrangler
 * pages dev` sets CF_PAGES=1 locally too.)
 */
export function isDeployed(requestUrl: URL | undefined): boolean {
  return requestUrl !== undefined && !LOOPBACK_HOSTS.has(requestUrl.hostname);
}

/**
 * What the middleware passes to clerkMiddleware: networkless verification with CLERK_JWT_KEY.
 * With `requestUrl`, a deployment (isDeployed) must also pin azp with CLERK_AUTHORIZED_PARTIES:
 * without it any Clerk app's session token signed by the instance key would be accepted.
 */
export function getClerkConfig(requestUrl?: URL): ClerkConfig {
  const env = requestEnv();
  const config = parsedClerkConfig(env);
  if (config.authorizedParties.length === 0 && isDeployed(requestUrl)) {
    throw new BackupError(
      "CONFIG_ERROR",
      "Clerk misconfigured: CLERK_AUTHORIZED_PARTIES is not set; it is required when deployed (set it to the portal's origins, e.g. https://portal.example.com)",
      { details: { problems: ["CLERK_AUTHORIZED_PARTIES is not set"] } },
    );
  }
  return config;
}

function parsedClerkConfig(env: RawEnv): ClerkConfig {
  return once(env, "clerk", () => {
    const parsed = clerkSchema.safeParse({
      CLERK_PUBLISHABLE_KEY: stringSetting(env, "CLERK_PUBLISHABLE_KEY") || stringSetting(env, "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY"),
      CLERK_SECRET_KEY: stringSetting(env, "CLERK_SECRET_KEY"),
      CLERK_JWT_KEY: stringSetting(env, "CLERK_JWT_KEY"),
      CLERK_AUTHORIZED_PARTIES: stringSetting(env, "CLERK_AUTHORIZED_PARTIES"),
    });
    if (!parsed.success) throw configError("Clerk", parsed.error);
    return {
      publishableKey: parsed.data.CLERK_PUBLISHABLE_KEY,
      secretKey: parsed.data.CLERK_SECRET_KEY,
      jwtKey: parsed.data.CLERK_JWT_KEY,
      authorizedParties: parsed.data.CLERK_AUTHORIZED_PARTIES,
    };
  });
}

/** The cron secret; unset, empty or short is CONFIG_ERROR, so the cron route fails closed. */
export function getCronConfig(): CronConfig {
  const env = requestEnv();
  return once(env, "cron", () => {
    const parsed = cronSchema.safeParse({ CRON_SECRET: stringSetting(env, "CRON_SECRET") });
    if (!parsed.success) throw configError("cron", parsed.error);
    return { cronSecret: parsed.data.CRON_SECRET };
  });
}

/** Seconds GET /api/health/backup answers from memory; PUBLIC_HEALTH_CACHE_SECONDS, 30 by default, 0 to 300. */
export function getPublicHealthCacheMs(): number {
  const env = requestEnv();
  return once(env, "health-cache", () => {
    const raw = stringSetting(env, "PUBLIC_HEALTH_CACHE_SECONDS");
    if (raw === undefined || raw.trim() === "") return 30_000;
    if (!/^\d{1,3}$/.test(raw.trim()) || Number(raw) > 300) {
      throw new BackupError("CONFIG_ERROR", "PUBLIC_HEALTH_CACHE_SECONDS must be a whole number of seconds from 0 to 300");
    }
    return Number(raw) * 1000;
  });
}

/**
 * ALERT_WEBHOOK_URL, parsed by the same parseAlertWebhook as the cron Worker's. Never throws: a
 * bad value must not stop a backup, only fail the run after it, naming the setting (runNightly).
 */
export function getAlertWebhook(): AlertWebhook {
  const env = requestEnv();
  return once(env, "alerts", () => parseAlertWebhook(stringSetting(env, "ALERT_WEBHOOK_URL")));
}

/**
 * BACKUP_SIGNING_KEY (a secret): the Ed25519 key each manifest is signed with. Unset: null, and
 * backups are made unsigned and say so (a missing secret must not stop backups; restores refuse
 * unsigned ones unless --allow-unsigned). Set but unusable: CONFIG_ERROR naming the setting, so a
 * broken deploy is noticed instead of silently making unsigned backups.
 */
export async function getSigningKey(): Promise<SigningKey | null> {
  const env = requestEnv();
  const parsed = await once(env, "signing", () => parseSigningKey(stringSetting(env, "BACKUP_SIGNING_KEY")));
  if (parsed.problem) throw new BackupError("CONFIG_ERROR", parsed.problem);
  return parsed.key;
}

/** BACKUP_LEASE_TTL_SECONDS (lock.ts parseLeaseTtl): unset is the 2-minute default. */
export function getLeaseTtlMs(): number | undefined {
  const env = requestEnv();
  return once(env, "lease-ttl", () => parseLeaseTtl(stringSetting(env, "BACKUP_LEASE_TTL_SECONDS")));
}

/**
 * BACKUP_AGE_RECIPIENTS (a plain variable: public keys only): the age recipients every backup
 * object is encrypted to. Unset: null, objects are plain gzip. Set but unusable: CONFIG_ERROR
 * naming the entry, so a typo never silently turns encryption off.
 */
export function getAgeEncryption(): AgeEncryption | null {
  const env = requestEnv();
  const parsed = once(env, "age", () => parseAgeRecipients(stringSetting(env, "BACKUP_AGE_RECIPIENTS")));
  if (parsed.problem) throw new BackupError("CONFIG_ERROR", parsed.problem);
  return parsed.encryption;
}

/**
 * OFFSITE_S3_* (the secret key a Pages secret): where the off-site copy goes. Never throws: none
 * set is off; a partial or bad set is reported by the backup run as offsite_copy_failed (the R2
 * backup is made anyway), and by the health as attention.
 */
export function getOffsite(): OffsiteSetting {
  const env = requestEnv();
  return once(env, "offsite", () => parseOffsiteConfig((name) => stringSetting(env, name)));
}

/** OFFSITE_S3_* are set (even wrongly): health then expects a verified off-site copy of the newest backup. */
export function isOffsiteConfigured(): boolean {
  const { config, problem } = getOffsite();
  return config !== null || problem !== null;
}

/** The off-site copy step for a backup run, or null when off-site copies are off. */
function getOffsiteStep(): OffsiteStep | null {
  return offsiteStep(getOffsite());
}

/** Everything a backup run is configured with (lib/backup RunSettings), each setting checked as above. */
export async function getRunSettings(): Promise<RunSettings> {
  return { signingKey: await getSigningKey(), leaseTtlMs: getLeaseTtlMs(), encryption: getAgeEncryption(), offsite: getOffsiteStep() };
}

/**
 * BACKUP_RETENTION (a var): the tiers, parsed once per env. The nightly route takes the result
 * whole (a bad value fails its cleanup stage, after the backup); see getRetentionPolicy.
 */
export function getRetentionSetting(): ParsedRetention {
  const env = requestEnv();
  return once(env, "retention", () => parseRetentionSetting(stringSetting(env, "BACKUP_RETENTION")));
}

/** The retention policy for a cleanup; a bad BACKUP_RETENTION is CONFIG_ERROR naming the setting. */
export function getRetentionPolicy(): RetentionPolicy {
  const parsed = getRetentionSetting();
  if (parsed.problem !== null) throw new BackupError("CONFIG_ERROR", parsed.problem);
  return parsed.policy;
}
