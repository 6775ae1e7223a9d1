/**
 * Store outages for the fault run (issue 7), real from the service's point of view:
 *  - PostgreSQL: a TCP proxy between the service and the server; `cut(ms)` destroys every open
 *    connection and refuses new ones for that long (the machine's PostgreSQL keeps running).
 *  - SQLite: another connection holds an EXCLUSIVE transaction on the file for that long, so every
 *    write of the service waits out its busy_timeout and fails with SQLITE_BUSY.
 */
import * as net from 'node:net';
import Database from 'better-sqlite3';

export class TcpFaultProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private down = false;
  port = 0;
  /** Connections refused or cut while down. */
  refused = 0;

  constructor(private readonly upstreamHost: string, private readonly upstreamPort: number) {}

  async start(): Promise<number> {
    this.server = net.createServer((client) => {
      if (this.down) {
        this.refused++;
        client.destroy();
        return;
      }
      const upstream = net.connect(this.upstreamPort, this.upstreamHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Cuts every connection and refuses new ones for `ms`; resolves when the store is reachable again. */
  async cut(ms: number): Promise<void> {
    this.down = true;
    for (const s of this.sockets) {
      this.refused++;
      s.destroy();
    }
    this.sockets.clear();
    await new Promise((r) => setTimeout(r, ms));
    this.down = false;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}

/** Holds an exclusive lock on a SQLite file for `ms` (waits up to 30 s to get it). */
export async function lockSqlite(file: string, ms: number): Promise<void> {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 30000');
    db.exec('BEGIN EXCLUSIVE');
    await new Promise((r) => setTimeout(r, ms));
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}
