// Streams SQL text into R2 as gzip (inside age when encrypting) through a multipart upload,
// hashing on the way, so memory stays at about one part whatever the database size.
import { BackupError, isBackupError, wrapBindingError } from "../errors";
import { encryptStream, type AgeEncryption } from "./encryption";
import { gzipStream } from "./gzip";
import { createSha256 } from "./hash";

/** R2 rejects non-final parts under 5 MiB and requires all non-final parts to be the same size. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

export interface StreamUploadResult {
  size: number;
  sha256: string;
  plainSize: number;
  plainSha256: string;
  parts: number;
}

export async function uploadGzip(
  bucket: R2Bucket,
  key: string,
  chunks: AsyncIterable<string>,
  partSize: number,
  /** Encrypt the gzip stream to these age recipients: size/sha256 are then the encrypted bytes'. */
  encryption: AgeEncryption | null = null,
): Promise<StreamUploadResult> {
  if (partSize < MIN_PART_SIZE) throw new RangeError(`partSize must be at least ${MIN_PART_SIZE}`);
  const encoder = new TextEncoder();
  const plainHash = createSha256();
  let plainSize = 0;
  const iterator = chunks[Symbol.asyncIterator]();
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) {
        controller.close();
        return;
      }
      const bytes = encoder.encode(value);
      await plainHash.update(bytes);
      plainSize += bytes.length;
      controller.enqueue(bytes);
    },
    async cancel() {
      await iterator.return?.(undefined);
    },
  });
  const gzipped = source.pipeThrough(gzipStream());
  const reader = (encryption ? await encryptStream(gzipped, encryption) : gzipped).getReader();

  let upload: R2MultipartUpload;
  try {
    upload = await bucket.createMultipartUpload(key, { httpMetadata: { contentType: encryption ? "application/octet-stream" : "application/gzip" } });
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw wrapBindingError("STORAGE_ERROR", "starting the upload failed", e);
  }

  const gzHash = createSha256();
  const parts: R2UploadedPart[] = [];
  let size = 0;
  let sent = 0;
  // One part uploads while the next is read, formatted and compressed (at most two parts in memory):
  // R2's write latency overlaps the work instead of stalling it.
  let inFlight: Promise<void> | null = null;
  const sendPart = async (bytes: Uint8Array) => {
    if (inFlight) await inFlight;
    const n = ++sent;
    inFlight = upload.uploadPart(n, bytes).then(
      (part) => {
        parts.push(part);
      },
      (e) => {
        throw wrapBindingError("STORAGE_ERROR", `uploading part ${n} failed`, e);
      },
    );
    inFlight.catch(() => {}); // surfaced by the next await of it
  };
  try {
    for await (const { bytes, final } of partsOf(reader, partSize)) {
      await gzHash.update(bytes);
      size += bytes.length;
      // The empty remainder after whole parts is not a part; an empty backup is one empty part.
      if (!final || bytes.length > 0 || sent === 0) await sendPart(bytes);
    }
    await inFlight;
    try {
      await upload.complete(parts);
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", "completing the upload failed", e);
    }
  } catch (e) {
    await reader.cancel(e).catch(() => {});
    // An aborted upload leaves nothing behind; without this, R2 keeps the parts for days.
    await upload.abort().catch(() => {});
    throw isBackupError(e) ? e : new BackupError("INTERNAL", `backup stream failed: ${String((e as Error)?.message ?? e)}`, { cause: e });
  }
  return {
    size,
    sha256: await gzHash.hex(),
    plainSize,
    plainSha256: await plainHash.hex(),
    parts: parts.length,
  };
}

/**
 * Cuts a byte stream into parts of exactly `partSize` bytes (R2 and S3 multipart uploads want
 * equal parts); the rest, shorter and possibly empty, comes last with `final`.
 */
export async function* partsOf(reader: ReadableStreamDefaultReader<Uint8Array>, partSize: number): AsyncGenerator<{ bytes: Uint8Array; final: boolean }> {
  let buf = new Uint8Array(partSize);
  let fill = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (let off = 0; off < value.length; ) {
      const n = Math.min(partSize - fill, value.length - off);
      buf.set(value.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === partSize) {
        yield { bytes: buf, final: false };
        buf = new Uint8Array(partSize);
        fill = 0;
      }
    }
  }
  yield { bytes: buf.slice(0, fill), final: true };
}

/**
 * Copies an object to its final key with custom metadata (R2 multipart uploads cannot take
 * metadata known only at the end), re-hashing the bytes so the final object is proven equal to
 * what was produced.
 */
export async function copyWithMetadata(
  bucket: R2Bucket,
  from: string,
  to: string,
  expected: { size: number; sha256: string },
  metadata: { customMetadata: Record<string, string>; httpMetadata: R2HTTPMetadata },
  partSize: number,
): Promise<void> {
  const hash = createSha256();
  const readRange = async (offset: number, length: number): Promise<Uint8Array> => {
    let obj: R2ObjectBody | null;
    try {
      obj = await bucket.get(from, { range: { offset, length } });
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", "reading the staged backup failed", e);
    }
    if (!obj) throw new BackupError("STORAGE_ERROR", `staged backup ${from} disappeared`);
    const bytes = new Uint8Array(await obj.arrayBuffer());
    if (bytes.length !== length) throw new BackupError("STORAGE_ERROR", `short read of ${from} at ${offset}`);
    await hash.update(bytes);
    return bytes;
  };

  if (expected.size <= partSize) {
    const bytes = await readRange(0, expected.size);
    if ((await hash.hex()) !== expected.sha256) {
      throw new BackupError("INTEGRITY_ERROR", `staged backup ${from} does not match what was written`);
    }
    try {
      // R2 verifies the sha256 itself and refuses the write on a mismatch.
      await bucket.put(to, bytes, { ...metadata, sha256: expected.sha256 });
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", "writing the backup object failed", e);
    }
    return;
  }

  let upload: R2MultipartUpload;
  try {
    upload = await bucket.createMultipartUpload(to, metadata);
  } catch (e) {
    throw wrapBindingError("STORAGE_ERROR", "starting the backup object upload failed", e);
  }
  try {
    const parts: R2UploadedPart[] = [];
    const range = (offset: number) => {
      const read = readRange(offset, Math.min(partSize, expected.size - offset));
      read.catch(() => {}); // surfaced when awaited
      return read;
    };
    // The next range is read while this one uploads; ranges are hashed in order (readRange awaits in turn).
    let next: Promise<Uint8Array> | null = range(0);
    for (let offset = 0; next; offset += partSize) {
      const bytes: Uint8Array = await next;
      next = offset + partSize < expected.size ? range(offset + partSize) : null;
      try {
        parts.push(await upload.uploadPart(parts.length + 1, bytes));
      } catch (e) {
        throw wrapBindingError("STORAGE_ERROR", `uploading part ${parts.length + 1} failed`, e);
      }
    }
    if ((await hash.hex()) !== expected.sha256) {
      throw new BackupError("INTEGRITY_ERROR", `staged backup ${from} does not match what was written`);
    }
    try {
      await upload.complete(parts);
    } catch (e) {
      throw wrapBindingError("STORAGE_ERROR", "completing the backup object failed", e);
    }
  } catch (e) {
    await upload.abort().catch(() => {});
    throw e;
  }
}
