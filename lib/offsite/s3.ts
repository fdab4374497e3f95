// A small S3 client over aws4fetch (SigV4 with WebCrypto and global fetch, so the same code runs
// in workerd and Node): single PUT, streaming multipart upload, streaming GET, HEAD,
// ListObjectsV2 and DELETE. Requests are retried with exponential backoff on 5xx, 429 and network
// errors; any other answer (403 above all) fails at once: retrying a refused key only delays the alert.
import { AwsClient } from "aws4fetch";
import { createSha256, partsOf } from "../backup";
import { BackupError, errorMessage, isBackupError } from "../errors";
import type { OffsiteConfig } from "./config";

/** S3 refuses non-final parts under 5 MiB; 8 MiB keeps memory at two parts and requests few. */
export const DEFAULT_OFFSITE_PART_SIZE = 8 * 1024 * 1024;

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Wait before the second try, doubled each time after (with jitter). */
  baseMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseMs: 500 };

export interface OffsiteClientOptions {
  retry?: Partial<RetryPolicy>;
  /** Multipart part size (S3's minimum is 5 MiB; tests use less against their local server). */
  partSizeBytes?: number;
  /** Called between requests of a long transfer (the backup lease's renewal). */
  heartbeat?: () => Promise<void>;
}

export interface OffsiteObject {
  key: string;
  size: number;
  lastModified: string;
}

export interface UploadResult {
  size: number;
  sha256: string;
  parts: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function xmlText(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&amp;/g, "&");
}

function xmlTag(xml: string, tag: string): string | null {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? xmlText(m[1]) : null;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export class OffsiteClient {
  readonly config: OffsiteConfig;
  private readonly aws: AwsClient;
  private readonly retry: RetryPolicy;
  readonly partSize: number;
  private readonly heartbeat: () => Promise<void>;

  constructor(config: OffsiteConfig, options: OffsiteClientOptions = {}) {
    this.config = config;
    // Retries are ours (aws4fetch's retry neither network errors nor give up early enough).
    this.aws = new AwsClient({ accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, service: "s3", region: config.region, retries: 0 });
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.partSize = options.partSizeBytes ?? DEFAULT_OFFSITE_PART_SIZE;
    this.heartbeat = options.heartbeat ?? (async () => {});
  }

  /** Where this bucket is, for messages: host and bucket, never a credential. */
  get where(): string {
    return `${this.config.endpointHost}/${this.config.bucket}`;
  }

  private url(key: string, query = ""): string {
    const path = key.split("/").map(encodeURIComponent).join("/");
    const { endpoint, bucket, pathStyle } = this.config;
    const base = pathStyle ? `${endpoint}/${bucket}` : endpoint.replace("://", `://${bucket}.`);
    return `${base}/${path}${query ? `?${query}` : ""}`;
  }

  /**
   * One signed request, retried on 5xx/429/network errors. `ok` lists the statuses that are an
   * answer (404 for a HEAD or GET of a missing key); anything else is a STORAGE_ERROR naming the
   * operation and S3's error code.
   */
  private async request(what: string, url: string, init: { method: string; body?: Uint8Array | string; headers?: Record<string, string> }, ok: number[] = [200]): Promise<Response> {
    let last: unknown;
    for (let attempt = 1; ; attempt++) {
      let res: Response | null = null;
      try {
        await this.heartbeat();
        res = await this.aws.fetch(url, init as unknown as RequestInit);
      } catch (e) {
        if (isBackupError(e)) throw e; // the heartbeat's LEASE_LOST
        last = e;
      }
      if (res && ok.includes(res.status)) return res;
      let retriable = true;
      if (res) {
        const body = await res.text().catch(() => "");
        const code = xmlTag(body, "Code");
        const message = xmlTag(body, "Message");
        last = new BackupError("STORAGE_ERROR", `off-site ${what} at ${this.where} failed: HTTP ${res.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`, {
          details: { status: res.status, s3Code: code },
        });
        retriable = res.status >= 500 || res.status === 429;
      }
      if (!retriable || attempt >= this.retry.attempts) {
        if (isBackupError(last)) throw last;
        throw new BackupError("STORAGE_ERROR", `off-site ${what} at ${this.where} failed: ${errorMessage(last)}`, { cause: last, details: { status: null } });
      }
      await sleep(this.retry.baseMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
    }
  }

  async putObject(key: string, body: Uint8Array | string, contentType: string): Promise<void> {
    const res = await this.request(`PUT ${key}`, this.url(key), { method: "PUT", body, headers: { "content-type": contentType } });
    await res.body?.cancel();
  }

  /** Size of a key, or null when there is none. */
  async headObject(key: string): Promise<{ size: number } | null> {
    const res = await this.request(`HEAD ${key}`, this.url(key), { method: "HEAD" }, [200, 404]);
    if (res.status === 404) return null;
    return { size: Number(res.headers.get("content-length") ?? "NaN") };
  }

  /** The object's body as a stream (never buffered here), or null when there is no such key. */
  async getObject(key: string): Promise<{ body: ReadableStream<Uint8Array>; size: number } | null> {
    const res = await this.request(`GET ${key}`, this.url(key), { method: "GET" }, [200, 404]);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.body) throw new BackupError("STORAGE_ERROR", `off-site GET ${key} at ${this.where} returned no body`);
    return { body: res.body as ReadableStream<Uint8Array>, size: Number(res.headers.get("content-length") ?? "NaN") };
  }

  async getText(key: string): Promise<string | null> {
    const res = await this.request(`GET ${key}`, this.url(key), { method: "GET" }, [200, 404]);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    return res.text();
  }

  async deleteObject(key: string): Promise<void> {
    const res = await this.request(`DELETE ${key}`, this.url(key), { method: "DELETE" }, [200, 204]);
    await res.body?.cancel();
  }

  /** Every key under `prefix` (ListObjectsV2, all pages; `pageSize` is max-keys, S3's default 1000). */
  async listObjects(prefix: string, opts: { pageSize?: number } = {}): Promise<OffsiteObject[]> {
    const out: OffsiteObject[] = [];
    let token: string | null = null;
    do {
      const q = new URLSearchParams({ "list-type": "2", prefix });
      if (opts.pageSize) q.set("max-keys", String(opts.pageSize));
      if (token) q.set("continuation-token", token);
      const res = await this.request(`LIST ${prefix}`, this.url("", q.toString()).replace(/\/\?/, "?"), { method: "GET" });
      const xml = await res.text();
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = xmlTag(m[1], "Key");
        if (key !== null) out.push({ key, size: Number(xmlTag(m[1], "Size") ?? "0"), lastModified: xmlTag(m[1], "LastModified") ?? "" });
      }
      token = xmlTag(xml, "IsTruncated") === "true" ? xmlTag(xml, "NextContinuationToken") : null;
    } while (token);
    return out;
  }

  /**
   * Streams `source` to `key`, hashing on the way: one PUT when it fits in one part, else a
   * multipart upload holding at most one part in memory (plus the one being sent). With
   * `expected`, the bytes must match it before the upload is completed, so a bad source never
   * becomes an object. Any failure aborts the multipart upload.
   */
  async uploadStream(
    key: string,
    source: ReadableStream<Uint8Array>,
    opts: { contentType: string; expected?: { size: number; sha256: string } },
  ): Promise<UploadResult> {
    const reader = source.getReader();
    const hash = createSha256();
    let size = 0;
    let uploadId: string | null = null;
    const etags: string[] = [];
    const check = async () => {
      const sha256 = await hash.hex();
      if (opts.expected && (size !== opts.expected.size || sha256 !== opts.expected.sha256)) {
        throw new BackupError("INTEGRITY_ERROR", `the source of ${key} is ${size} bytes with sha256 ${sha256}, its manifest says ${opts.expected.size} bytes, ${opts.expected.sha256}`);
      }
      return sha256;
    };
    const sendPart = async (bytes: Uint8Array) => {
      if (uploadId === null) {
        const res = await this.request(`start upload of ${key}`, this.url(key, "uploads"), { method: "POST", headers: { "content-type": opts.contentType } });
        uploadId = xmlTag(await res.text(), "UploadId");
        if (!uploadId) throw new BackupError("STORAGE_ERROR", `off-site start upload of ${key} at ${this.where}: no UploadId in the answer`);
      }
      const n = etags.length + 1;
      const res = await this.request(`upload part ${n} of ${key}`, this.url(key, `partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`), { method: "PUT", body: bytes });
      await res.body?.cancel();
      const etag = res.headers.get("etag");
      if (!etag) throw new BackupError("STORAGE_ERROR", `off-site upload part ${n} of ${key} at ${this.where}: no ETag in the answer`);
      etags.push(etag);
    };
    try {
      for await (const { bytes, final } of partsOf(reader, this.partSize)) {
        await hash.update(bytes);
        size += bytes.length;
        if (final && uploadId === null) {
          // Smaller than one part: a plain PUT.
          const sha256 = await check();
          await this.putObject(key, bytes, opts.contentType);
          return { size, sha256, parts: 0 };
        }
        if (!final || bytes.length > 0) await sendPart(bytes);
      }
      // partsOf always ends with a final part, which either PUT the object or followed a sent one.
      const id = uploadId as string | null;
      if (id === null) throw new BackupError("INTERNAL", `off-site upload of ${key}: no final part`);
      const sha256 = await check();
      const xml =
        "<CompleteMultipartUpload>" +
        etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(e)}</ETag></Part>`).join("") +
        "</CompleteMultipartUpload>";
      const res = await this.request(`complete upload of ${key}`, this.url(key, `uploadId=${encodeURIComponent(id)}`), {
        method: "POST",
        body: xml,
        headers: { "content-type": "application/xml" },
      });
      // S3 can answer 200 with an <Error> body when completing fails late.
      const text = await res.text();
      if (/<Error>/.test(text)) throw new BackupError("STORAGE_ERROR", `off-site complete upload of ${key} at ${this.where} failed: ${xmlTag(text, "Code")}: ${xmlTag(text, "Message")}`);
      return { size, sha256, parts: etags.length };
    } catch (e) {
      await reader.cancel(e).catch(() => {});
      if (uploadId !== null) await this.abortUpload(key, uploadId).catch(() => {});
      throw e;
    }
  }

  /** Drops a multipart upload's parts (else the provider keeps, and bills, them). */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    const res = await this.request(`abort upload of ${key}`, this.url(key, `uploadId=${encodeURIComponent(uploadId)}`), { method: "DELETE" }, [200, 204]);
    await res.body?.cancel();
  }
}

/** Streams an object and returns its size and sha256 (the read-back check). */
export async function hashStream(body: ReadableStream<Uint8Array>): Promise<{ size: number; sha256: string }> {
  const hash = createSha256();
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    await hash.update(value);
    size += value.length;
  }
  return { size, sha256: await hash.hex() };
}
