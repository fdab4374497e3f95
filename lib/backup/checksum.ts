// A table's checksum: SHA-256 over the rows exactly as the dump reads them, each row's VALUES
// tuple built inside SQLite by quote() (rowQuery in lib/sql/table.ts), so nothing is re-read for
// it. A large cell's slices (hex, read apart from the tuple) are hashed after its row. The restore
// drill (lib/drill) runs the same dump reader over the restored database and compares.
import { createSha256, type Sha256Stream } from "./hash";

/** Strings are buffered and hashed in ~1 MiB pieces: one encode and one digest write per piece. */
const FLUSH_CHARS = 1024 * 1024;

export class TableChecksum {
  private readonly hash: Sha256Stream = createSha256();
  private parts: string[] = [];
  private chars = 0;
  private pending: Promise<void> = Promise.resolve();
  private readonly encoder = new TextEncoder();

  /** One row's tuple. */
  row(tuple: string): void {
    this.push(tuple, "\n");
  }

  /** One slice of a large cell of the row just added: its index in the tuple and its hex. */
  slice(index: number, hex: string): void {
    this.push(`#${index}:`, hex, "\n");
  }

  private push(...pieces: string[]): void {
    for (const p of pieces) {
      this.parts.push(p);
      this.chars += p.length;
    }
    if (this.chars >= FLUSH_CHARS) this.flush();
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    const bytes = this.encoder.encode(this.parts.join(""));
    this.parts = [];
    this.chars = 0;
    // Chained, not awaited per piece: the digest stream keeps order; errors surface in hex().
    this.pending = this.pending.then(() => this.hash.update(bytes));
  }

  async hex(): Promise<string> {
    this.flush();
    await this.pending;
    return this.hash.hex();
  }
}
