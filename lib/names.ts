// The one place that names the Cloudflare resources and R2 prefixes. wrangler.toml and
// functions/wrangler.toml declare the same names; tests/node/names.test.ts keeps them equal.
export const DATABASE_NAME = "tech-support-db";
export const BUCKET_NAME = "tech-support-documents";
/** Binding names, identical in the Pages project and the cron Worker. */
export const DB_BINDING = "DB";
export const BUCKET_BINDING = "DOCUMENTS";
/** Everything the backup system writes lives under this prefix of the shared bucket. */
export const BACKUP_PREFIX = "backups/";
/** Objects of a run that has not yet sealed its backup. */
export const STAGING_PREFIX = `${BACKUP_PREFIX}.staging/`;
/** The cron Worker only: the scratch database the nightly restore drill empties and restores into (lib/drill). */
export const DRILL_DATABASE_NAME = "tech-support-db-drill";
export const DRILL_DB_BINDING = "RESTORE_DRILL_DB";
