/// <reference types="@cloudflare/vitest-pool-workers/types" />
// The cron Worker encrypts in workerd: with BACKUP_AGE_RECIPIENTS (parsed at the top of
// scheduled()) the nightly object is an age file under `.sql.gz.age`, holding no plaintext, that
// the matching identity decrypts (here with the same library, in workerd) to the whole dump; an
// unusable value fails the run naming it, and never makes a plaintext backup instead.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AGE_MAGIC, decryptStream, DUMP_END_MARKER, generateAgeKey, listBackups } from "../../lib/backup";
import { runCron } from "./cron";

describe("cron Worker with BACKUP_AGE_RECIPIENTS", () => {
  it("writes the nightly backup as an age file only the identity opens", async () => {
    await env.DB.prepare("INSERT INTO clients (id, company_name, email) VALUES ('c-age', 'Secret Client Ltd', 'it@secret.test')").run();
    const [a, b] = [await generateAgeKey(), await generateAgeKey()];
    await runCron({ ...env, BACKUP_AGE_RECIPIENTS: `${a.recipient}, ${b.recipient}` });
    const [newest] = (await listBackups(env.DOCUMENTS)).backups;
    expect(newest.key).toMatch(/^backups\/database-[\d-]+\.sql\.gz\.age$/);
    expect(newest.manifest.object.contentEncoding).toBe("age+gzip");
    expect(newest.manifest.encryption).toEqual({ scheme: "age", recipients: [a.recipient, b.recipient] });
    expect(newest.metadata.encryption).toBe("age");

    const bytes = new Uint8Array(await (await env.DOCUMENTS.get(newest.key))!.arrayBuffer());
    const text = new TextDecoder("latin1").decode(bytes);
    expect(text.startsWith(`${AGE_MAGIC}\n`)).toBe(true);
    expect(text).not.toContain("Secret Client Ltd");
    expect(text).not.toContain("INSERT INTO");

    const obj = await env.DOCUMENTS.get(newest.key);
    const plain = await decryptStream(obj!.body, [b.identity], newest.key);
    // The DOM and Workers typings disagree on DecompressionStream; workerd takes bytes.
    const gunzip = new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
    const sql = await new Response(plain.pipeThrough(gunzip)).text();
    expect(sql).toContain("Secret Client Ltd");
    expect(sql.trimEnd().endsWith(DUMP_END_MARKER)).toBe(true);
  });

  it("an unusable BACKUP_AGE_RECIPIENTS fails the run with CONFIG_ERROR naming it, and nothing is written", async () => {
    const count = (await listBackups(env.DOCUMENTS)).backups.length;
    const { identity } = await generateAgeKey();
    const err = await runCron({ ...env, BACKUP_AGE_RECIPIENTS: identity }).catch((e) => e);
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.message).toContain("BACKUP_AGE_RECIPIENTS entry 1 is a PRIVATE key");
    expect(err.message).not.toContain(identity);
    expect((await listBackups(env.DOCUMENTS)).backups).toHaveLength(count);
  });
});
