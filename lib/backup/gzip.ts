// The gzip stage of a backup. Where the runtime has node:zlib (the cron Worker and the local
// runner: workerd with nodejs_compat; Node), level 1: a third of CompressionStream's CPU (fixed
// at zlib's level 6) for a fifth more bytes (+21 % on the 1M-row portal); gzip was the largest
// cost after reading D1 (docs/benchmarks.md). Elsewhere (the Pages build) CompressionStream.
import { nodeBuiltin } from "./node-builtin";

/** zlib's fastest level. */
export const GZIP_LEVEL = 1;

/** The part of a node:zlib Gzip stream used here. */
interface NodeGzip {
  write(chunk: Uint8Array, done: (error?: Error | null) => void): boolean;
  end(): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  once(event: "end", listener: () => void): void;
}

type CreateGzip = (options: { level: number }) => NodeGzip;

function nodeCreateGzip(): CreateGzip | null {
  return nodeBuiltin<{ createGzip: CreateGzip }>("node:zlib", (m) => typeof m.createGzip === "function")?.createGzip ?? null;
}

/** Which gzip a stream from gzipStream() uses here (for the benchmark's report). */
export function gzipKind(): string {
  return nodeCreateGzip() ? `node:zlib level ${GZIP_LEVEL}` : "CompressionStream (level 6)";
}

/**
 * A gzip transform, bytes in and out. Each chunk is handed on once zlib has taken it (its output
 * is queued by then), and the TransformStream writes no more while its output is unread: memory
 * stays at a chunk or two. (stream.Duplex.toWeb's close never settles in workerd, hence this.)
 */
export function gzipStream(): ReadableWritablePair<Uint8Array, Uint8Array> {
  const createGzip = nodeCreateGzip();
  if (createGzip) {
    const gz = createGzip({ level: GZIP_LEVEL });
    return new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        gz.on("data", (chunk) => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
        gz.on("error", (e) => controller.error(e));
      },
      transform: (chunk) => new Promise<void>((resolve, reject) => void gz.write(chunk, (e) => (e ? reject(e) : resolve()))),
      flush: () =>
        new Promise<void>((resolve) => {
          gz.once("end", resolve);
          gz.end();
        }),
    });
  }
  // The DOM and Workers typings disagree on CompressionStream; both runtimes take Uint8Array in and out.
  return new CompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
}
