// Incremental SHA-256 that uses the runtime's native digest where there is one (workerd's
// crypto.DigestStream, several times faster than JS) and a pure-JS fallback elsewhere (Node CLIs
// through getPlatformProxy), so the library needs no Node-only import in the edge bundle.
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";

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
  const h = sha256.create();
  return {
    update: async (bytes) => {
      h.update(bytes);
    },
    hex: async () => bytesToHex(h.digest()),
  };
}
