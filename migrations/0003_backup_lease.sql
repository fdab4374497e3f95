-- The backup lock becomes a lease (lib/backup/lock.ts): a short expiry renewed by the running run.
-- `state` is JSON of what the run has in flight (operation, backup name, open multipart uploads),
-- so the run that finds the lease expired can log the dead run and abort its uploads: the R2
-- binding cannot list open multipart uploads.
ALTER TABLE backup_lock ADD COLUMN state TEXT;
