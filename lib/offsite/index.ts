// The off-site copy: an S3-compatible bucket outside the Cloudflare account (config, client, the
// copy step the backup run calls, and what retention and the restore CLI need).
export { OFFSITE_SETTINGS, offsiteKeyFor, parseOffsiteConfig, r2KeyFor, type OffsiteConfig, type OffsiteSetting } from "./config";
export { hashStream, OffsiteClient, type OffsiteClientOptions, type OffsiteObject } from "./s3";
export { copyMissingToOffsite, offsiteStep, type OffsiteCopyOptions, type OffsiteCopyReport } from "./copy";
export { applyOffsiteRetention, type OffsiteRetentionReport } from "./retention";
