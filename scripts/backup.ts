// `npm run backup [-- --list] [-- --persist-to DIR]`: one backup (or a listing) against the local
// D1/R2 state that `wrangler --local` uses, printing the JSON the API returns. The library runs
// inside workerd, as in production (lib/local/runner.ts).
import { parseArgs } from "node:util";
import { localSetting, startLocalWorker } from "../lib/local";
import { OFFSITE_SETTINGS } from "../lib/offsite";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      list: { type: "boolean", default: false },
      latest: { type: "boolean", default: false },
      "persist-to": { type: "string" },
      "lease-ttl": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      [
        "usage: npm run backup [-- --persist-to DIR]            one backup; prints the API's JSON",
        "       npm run backup -- --list [--persist-to DIR]     complete backups (newest first) and leftovers",
        "       npm run -s backup -- --latest                   the newest complete backup's name, for scripts",
        "       --lease-ttl SECONDS                             a shorter lease than the default 120 s (tests)",
        "default state: .wrangler/state (what wrangler --local uses)",
        "signs the manifest with BACKUP_SIGNING_KEY (environment, else .dev.vars; npm run keys makes one); unset: unsigned",
        "encrypts the object to BACKUP_AGE_RECIPIENTS (age1… public keys; npm run keys -- --age makes one): database-….sql.gz.age",
        "with OFFSITE_S3_* set (same sources), copies the backup (and any missing ones) to the off-site bucket and verifies it",
      ].join("\n"),
    );
    return 0;
  }
  const ttl = values["lease-ttl"];
  if (ttl !== undefined && !/^[1-9]\d{0,3}$/.test(ttl)) {
    console.error(`backup: --lease-ttl takes whole seconds from 1 to 9999 (got ${ttl})`);
    return 2;
  }
  const leaseTtlMs = ttl === undefined ? undefined : Number(ttl) * 1000;
  const offsite = Object.fromEntries([...OFFSITE_SETTINGS, "OFFSITE_S3_PREFIX", "OFFSITE_S3_PATH_STYLE"].map((n) => [n, localSetting(n)]));
  const worker = await startLocalWorker({ persistTo: values["persist-to"], secrets: { BACKUP_SIGNING_KEY: localSetting("BACKUP_SIGNING_KEY"), BACKUP_AGE_RECIPIENTS: localSetting("BACKUP_AGE_RECIPIENTS"), ...offsite } });
  try {
    if (values.latest) {
      const res = await worker.call<{ backups?: { key: string }[] }>("/list");
      const newest = res.body.backups?.[0];
      if (res.status !== 200 || !newest) {
        console.error(res.status === 200 ? "backup: no complete backup yet" : JSON.stringify(res.body));
        return 1;
      }
      console.log(newest.key.replace(/^backups\//, "").replace(/\.sql\.gz(\.age)?$/, ""));
      return 0;
    }
    const res = values.list
      ? await worker.call<unknown>("/list")
      : await worker.call<{ success: boolean; manifest?: unknown }>("/backup", { method: "POST", body: { leaseTtlMs } });
    const body = res.body as Record<string, unknown>;
    delete body.manifest; // the CLI prints exactly what the API returns
    console.log(JSON.stringify(body, null, 2));
    return res.status === 200 ? 0 : 1;
  } finally {
    await worker.dispose();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`backup: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
