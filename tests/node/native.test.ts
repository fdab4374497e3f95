// Node built-ins the library looks up at run time (lib/backup/node-builtin.ts): the backup's gzip
// stage gives back every byte on node:zlib (level 1) and on the CompressionStream fallback (the
// Pages build, where node:zlib is not reachable); SHA-256 is the same on node:crypto and on the
// pure-JS fallback.
import { createHash, randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { createSha256, gzipKind, gzipStream } from "../../lib/backup";

/** Pipes chunks through a fresh gzipStream(), reading slowly, and returns the gzip bytes. */
async function gzipChunks(chunks: Uint8Array[]): Promise<Buffer> {
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
  const out: Uint8Array[] = [];
  for await (const c of source.pipeThrough(gzipStream()) as unknown as AsyncIterable<Uint8Array>) {
    out.push(c);
    await new Promise((r) => setTimeout(r, 0)); // a reader slower than the writer
  }
  return Buffer.concat(out);
}

function sample(): Uint8Array[] {
  // Compressible SQL-like text and incompressible bytes, in chunks of uneven sizes.
  const text = new TextEncoder().encode("INSERT INTO t VALUES (1,'it''s 🎫',X'00FF');\n".repeat(40_000));
  return [text.subarray(0, 7), randomBytes(300_000), text.subarray(7), new Uint8Array(0), randomBytes(1)];
}

const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c)));

describe("gzipStream", () => {
  const getBuiltinModule = process.getBuiltinModule;
  afterEach(() => {
    process.getBuiltinModule = getBuiltinModule;
  });

  it("uses node:zlib at level 1 where the runtime has it, and gives back every byte", async () => {
    expect(gzipKind()).toBe("node:zlib level 1");
    const chunks = sample();
    const input = concat(chunks);
    const gz = await gzipChunks(chunks);
    expect(gunzipSync(gz).equals(input)).toBe(true);
    // Level 1, not CompressionStream's 6: the same text compresses less.
    process.getBuiltinModule = undefined as unknown as typeof process.getBuiltinModule;
    const level6 = await gzipChunks(sample().slice(2, 3));
    process.getBuiltinModule = getBuiltinModule;
    const level1 = await gzipChunks(sample().slice(2, 3));
    expect(level1.length).toBeGreaterThan(level6.length);
  });

  it("falls back to CompressionStream without node:zlib, with the same bytes back", async () => {
    process.getBuiltinModule = undefined as unknown as typeof process.getBuiltinModule;
    expect(gzipKind()).toBe("CompressionStream (level 6)");
    const chunks = sample();
    const input = concat(chunks);
    expect(gunzipSync(await gzipChunks(chunks)).equals(input)).toBe(true);
  });

  it("compresses an empty stream to a valid empty gzip", async () => {
    const gz = await gzipChunks([]);
    expect(gz.length).toBeGreaterThan(0);
    expect(gunzipSync(gz).length).toBe(0);
  });
});

describe("createSha256", () => {
  const getBuiltinModule = process.getBuiltinModule;
  afterEach(() => {
    process.getBuiltinModule = getBuiltinModule;
  });

  const digest = async (pieces: Uint8Array[]) => {
    const h = createSha256();
    for (const p of pieces) await h.update(p);
    return h.hex();
  };

  it("hashes pieces like node:crypto hashes the whole, natively and on the JS fallback", async () => {
    const pieces = [randomBytes(1), new Uint8Array(0), randomBytes(70_000), randomBytes(3)];
    const expected = createHash("sha256").update(concat(pieces)).digest("hex");
    expect(await digest(pieces)).toBe(expected);
    process.getBuiltinModule = undefined as unknown as typeof process.getBuiltinModule;
    expect(await digest(pieces)).toBe(expected);
  });
});
