// `npm run backup [-- --list] [-- --persist-to DIR]`: one backup (or a listing) against the local
// D1/R2 state that `wrangler --local` uses, printing the JSON the API returns.
import { parseArgs } from "node:util";
import { backupDatabase, backupResponse, errorResponse, listBackups, listResponse } from "../lib/backup";
import { openLocalPlatform } from "../lib/local/platform";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      list: { type: "boolean", default: false },
      "persist-to": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npm run backup [-- --list] [-- --persist-to DIR]");
    return 0;
  }
  const platform = await openLocalPlatform({ persistTo: values["persist-to"] });
  try {
    const { DB: db, DOCUMENTS: bucket } = platform.env;
    if (values.list) {
      console.log(JSON.stringify(listResponse(await listBackups(bucket)), null, 2));
    } else {
      const { summary } = await backupDatabase({ db, bucket, trigger: "cli" });
      console.log(JSON.stringify(backupResponse(summary), null, 2));
    }
    return 0;
  } catch (e) {
    const { body } = errorResponse(e);
    if (body.error.code === "INTERNAL") body.error.message = String((e as Error)?.message ?? e);
    console.log(JSON.stringify(body, null, 2));
    return 1;
  } finally {
    await platform.dispose();
  }
}

main().then((code) => process.exit(code));
