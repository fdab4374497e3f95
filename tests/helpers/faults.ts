// Fault injection at the binding boundary: real local D1/R2 underneath, with one chosen call
// made to fail, so a test can prove what a failure half way leaves behind.

export interface BucketFaults {
  /** Throw from the Nth uploadPart (1-based, counted across uploads). */
  uploadPart?: { nth: number; message: string };
  /** Throw from put() for keys matching this pattern. */
  put?: { key: RegExp; message: string };
  /** Throw from delete() when any of the keys it is given fails this test. */
  delete?: { fails: (key: string) => boolean; message: string };
}

export interface FaultyBucket {
  bucket: R2Bucket;
  /** Uploads that were aborted: [key, uploadId]. */
  aborted: [string, string][];
}

export function faultyBucket(real: R2Bucket, faults: BucketFaults): FaultyBucket {
  const aborted: [string, string][] = [];
  let parts = 0;
  const wrapUpload = (u: R2MultipartUpload): R2MultipartUpload => ({
    key: u.key,
    uploadId: u.uploadId,
    uploadPart: async (n: number, value: Parameters<R2MultipartUpload["uploadPart"]>[1]) => {
      parts++;
      if (faults.uploadPart && parts === faults.uploadPart.nth) throw new Error(faults.uploadPart.message);
      return u.uploadPart(n, value);
    },
    abort: async () => {
      aborted.push([u.key, u.uploadId]);
      return u.abort();
    },
    complete: (p: R2UploadedPart[]) => u.complete(p),
  });
  const bucket = {
    head: (k: string) => real.head(k),
    get: (k: string, o?: R2GetOptions) => real.get(k, o),
    list: (o?: R2ListOptions) => real.list(o),
    delete: async (k: string | string[]) => {
      if (faults.delete && (Array.isArray(k) ? k : [k]).some(faults.delete.fails)) throw new Error(faults.delete.message);
      return real.delete(k);
    },
    put: async (k: string, v: unknown, o?: R2PutOptions) => {
      if (faults.put && faults.put.key.test(k)) throw new Error(faults.put.message);
      return real.put(k, v as never, o);
    },
    createMultipartUpload: async (k: string, o?: R2MultipartOptions) => wrapUpload(await real.createMultipartUpload(k, o)),
    resumeMultipartUpload: (k: string, id: string) => wrapUpload(real.resumeMultipartUpload(k, id)),
  };
  return { bucket: bucket as unknown as R2Bucket, aborted };
}

/** The bucket whose manifest writes fail: a backup that fails at its very last step. */
export const manifestPutFails = (real: R2Bucket): R2Bucket =>
  faultyBucket(real, { put: { key: /\.manifest\.json$/, message: "injected: R2 is unavailable" } }).bucket;

/** A D1 binding whose reads of one table fail (both paged reads and snapshot batches). */
export function faultyDb(real: D1Database, failOn: RegExp, message: string): D1Database {
  const fail = () => Promise.reject(new Error(message));
  const faulty = new WeakSet<object>();
  return {
    prepare: (sql: string) => {
      const stmt = real.prepare(sql);
      if (!failOn.test(sql)) return stmt;
      const bad = { ...stmt, bind: () => ({ all: fail, run: fail, raw: fail, first: fail }), all: fail, run: fail, raw: fail, first: fail };
      faulty.add(bad);
      return bad as unknown as D1PreparedStatement;
    },
    // A batch holding a failing statement fails whole, as D1 rolls back the whole batch.
    batch: (stmts: D1PreparedStatement[]) => (stmts.some((s) => faulty.has(s)) ? fail() : real.batch(stmts)),
    exec: (sql: string) => real.exec(sql),
    dump: () => real.dump(),
    withSession: (...a: unknown[]) => (real as unknown as { withSession: (...x: unknown[]) => unknown }).withSession(...a),
  } as unknown as D1Database;
}
