// Incremental SHA-256 that uses the runtime's native digest where there is one (workerd's
// crypto.DigestStream; Node's node:crypto, looked up at run time like node:zlib in gzip.ts, for
// CLIs and tests through getPlatformProxy), several times faster than JS, and a pure-JS fallback
// elsewhere, so the library needs no Node-only import in the edge bundle.
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";
import { nodeBuiltin } from "./node-builtin";

export interface Sha256Stream {
  update(bytes: Uint8Array): Promise<void>;
  /** Finishes the hash; call once. */
  hex(): Promise<string>;
}

type DigestStreamCtor = new (algorithm: string) => WritableStream<Uint8Array> & { digest: Promise<ArrayBuffer> };

export function createSha256(): Sha256Stream {
  const Native = (globalThis.crypto as unknown as { DigestStream?: DigestStreamCtor } | undefined)?.DigestStream;
  if (Native) {
    const stream = new Native("SHA-256");
    const writer = stream.getWriter();
    return {
      update: (bytes) => writer.write(bytes),
      hex: async () => {
        await writer.close();
        return bytesToHex(new Uint8Array(await stream.digest));
      },
    };
  }
  const nodeHash = nodeCreateHash();
  if (nodeHash) {
    const h = nodeHash("sha256");
    return {
      update: async (bytes) => {
        h.update(bytes);
      },
      hex: async () => h.digest("hex"),
    };
  }
  const h = sha256.create();
  return {
    update: async (bytes) => {
      h.update(bytes);
    },
    hex: async () => bytesToHex(h.digest()),
  };
}

type CreateHash = (algorithm: string) => { update(bytes: Uint8Array): void; digest(encoding: "hex"): string };

function nodeCreateHash(): CreateHash | null {
  return nodeBuiltin<{ createHash: CreateHash }>("node:crypto", (m) => typeof m.createHash === "function")?.createHash ?? null;
}
