-- One backup/cleanup run at a time (lib/backup/lock.ts). A row is a held lock; a crashed run's
-- row stops counting at expires_at, so no one has to clear it by hand.
-- Timestamps are ISO-8601 UTC text from Date.toISOString() (fixed width), so comparing them as
-- text compares them as times.
CREATE TABLE backup_lock (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  started_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
