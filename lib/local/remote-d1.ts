// The D1 API over HTTP to the benchmark's D1 host (d1-host.ts), for the backup library running in
// another workerd process: every call is one request, answered with what the real binding there
// returned (results and meta alike), so the library runs unchanged. Only the calls the backup
// makes exist; the rest throw.

export interface RemoteBatch {
  statements: { sql: string; params: unknown[] }[];
  /** One statement read with raw(): rows as arrays, as the read floor reads them. */
  raw?: boolean;
}

type Answer = { ok: true; results?: D1Result[]; raw?: unknown[][] } | { ok: false; message: string };

class RemoteStatement {
  constructor(
    readonly db: RemoteD1,
    readonly sql: string,
    readonly params: unknown[] = [],
  ) {}

  bind(...params: unknown[]): RemoteStatement {
    return new RemoteStatement(this.db, this.sql, params);
  }

  async all<T>(): Promise<D1Result<T>> {
    return (await this.db.batch<T>([this as unknown as D1PreparedStatement]))[0];
  }

  run<T>(): Promise<D1Result<T>> {
    return this.all<T>();
  }

  async first<T>(column?: string): Promise<T | null> {
    const row = (await this.all<Record<string, unknown>>()).results[0];
    if (!row) return null;
    return (column === undefined ? row : row[column]) as T;
  }

  async raw<T = unknown[]>(): Promise<T[]> {
    return (await this.db.send({ statements: [{ sql: this.sql, params: this.params }], raw: true })).raw as T[];
  }
}

class RemoteD1 {
  constructor(private readonly url: string) {}

  prepare(sql: string): D1PreparedStatement {
    return new RemoteStatement(this, sql) as unknown as D1PreparedStatement;
  }

  async batch<T>(stmts: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    const statements = (stmts as unknown as RemoteStatement[]).map((s) => ({ sql: s.sql, params: s.params }));
    return (await this.send({ statements })).results as D1Result<T>[];
  }

  async send(batch: RemoteBatch): Promise<Extract<Answer, { ok: true }>> {
    const res = await fetch(this.url, { method: "POST", body: JSON.stringify(batch), headers: { "content-type": "application/json" } });
    const answer = (await res.json()) as Answer;
    // The binding's own errors come back as messages; thrown here as D1 throws them.
    if (!answer.ok) throw new Error(answer.message);
    return answer;
  }
}

/** A D1Database whose queries run in the D1 host at `url`. */
export function remoteD1(url: string): D1Database {
  return new RemoteD1(url) as unknown as D1Database;
}
