/**
 * A lease: only its holder runs the guarded work (the outbound relay), so several instances never
 * relay at once; when the holder dies another takes over.
 *
 * PostgreSQL: a session-level advisory lock held on a dedicated connection (not the store's pool).
 * The server releases it the moment the holder's session ends (process killed, network cut,
 * graceful stop), and every instance that does not hold it tries again every `checkMs`. The holder
 * checks its connection every `checkMs` too and stops the work when it is lost. A holder that goes
 * silent without closing its connection (its node crashed or is cut off: no FIN) would keep the
 * session, and the lock, until TCP keepalive gives up (hours by default), so both sides bound it:
 * the lease session sets `idle_session_timeout` (PostgreSQL 14+) to IDLE_CHECKS x `checkMs`, so the
 * server ends a session that has not been checked for that long and the lock goes; and every check
 * has a client-side timeout of QUERY_CHECKS x `checkMs` (shorter), so a silent holder stops its
 * work before the server frees the lock for another instance (relay-lease-frozen.test.ts). The relay
 * is at-least-once with stable ids anyway. The lock key is derived from the schema and the
 * lease name (advisory locks are per database), so two schemas never share one.
 *
 * SQLite is single-process by nature (one service instance per file): its lease is always held.
 */
import { createHash } from 'node:crypto';
import { Client } from 'pg';

export interface LeaseLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export interface Lease {
  /** Starts competing: `onAcquired` runs when this instance gets the lease, `onLost` when it loses it. */
  start(onAcquired: () => Promise<void>, onLost: () => Promise<void>): Promise<void>;
  /** Stops the work (onLost) if held, releases the lease and stops competing. */
  stop(): Promise<void>;
  readonly held: boolean;
}

/** Always held: single-process stores (SQLite). */
export class LocalLease implements Lease {
  held = false;
  private onLost: (() => Promise<void>) | null = null;

  async start(onAcquired: () => Promise<void>, onLost: () => Promise<void>): Promise<void> {
    this.onLost = onLost;
    this.held = true;
    await onAcquired();
  }

  async stop(): Promise<void> {
    if (this.held) await this.onLost?.();
    this.held = false;
  }
}

/** 64-bit advisory lock key (as a decimal string) of a name. */
export function advisoryKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

/** The server ends a lease session not checked for this many intervals (at least 5 s). */
const IDLE_CHECKS = 5;
/** A check not answered within this many intervals (at least 1 s) counts as a lost session. */
const QUERY_CHECKS = 2;

export class PostgresAdvisoryLease implements Lease {
  held = false;
  private client: Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private busy: Promise<void> = Promise.resolve();
  private onAcquired: () => Promise<void> = async () => undefined;
  private onLost: () => Promise<void> = async () => undefined;
  readonly key: string;

  constructor(
    private readonly url: string,
    /** e.g. `${schema}:relay:kafka` */
    readonly name: string,
    private readonly logger: LeaseLogger,
    private readonly checkMs = 2000,
  ) {
    this.key = advisoryKey(name);
  }

  async start(onAcquired: () => Promise<void>, onLost: () => Promise<void>): Promise<void> {
    this.onAcquired = onAcquired;
    this.onLost = onLost;
    this.stopped = false;
    await this.step();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.busy = this.step().finally(() => this.schedule());
    }, this.checkMs);
  }

  /** One check: try to take the lease, or verify the session that holds it. */
  private async step(): Promise<void> {
    if (this.stopped) return;
    try {
      if (!this.client) {
        const client = new Client({
          connectionString: this.url,
          connectionTimeoutMillis: Math.max(1000, this.checkMs),
          query_timeout: this.queryTimeoutMs,
          keepAlive: true,
          application_name: `metering-lease`,
        });
        // A session error (server gone) surfaces on the next query; keep it from crashing the process.
        client.on('error', () => undefined);
        this.client = client;
        await client.connect();
        // Before PostgreSQL 14 the setting is unknown: the session then lives until TCP gives up.
        await client.query(`SET idle_session_timeout = ${this.idleTimeoutMs}`).catch((err) => this.logger.warn({ err, lease: this.name }, 'idle_session_timeout not set: a silent holder keeps the lease until TCP keepalive ends its session'));
      }
      if (this.held) {
        await this.client.query('SELECT 1');
        return;
      }
      const r = await this.client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [this.key]);
      if (r.rows[0]?.ok && !this.stopped) {
        this.held = true;
        this.logger.info({ lease: this.name }, 'lease acquired: this instance runs the outbound relay');
        await this.onAcquired().catch((err) => this.logger.error({ err, lease: this.name }, 'lease holder failed to start its work'));
      }
    } catch (err) {
      const client = this.client;
      this.client = null;
      // Not awaited: on a silent connection the goodbye is never answered.
      client?.end().catch(() => undefined);
      if (this.held) {
        this.held = false;
        this.logger.warn({ err, lease: this.name }, 'lease lost (its database session failed): stopping the outbound relay');
        await this.onLost().catch((e) => this.logger.error({ err: e, lease: this.name }, 'stopping after a lost lease failed'));
      } else this.logger.warn({ err, lease: this.name }, 'cannot check the lease; trying again');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.busy;
    if (this.held) {
      this.held = false;
      await this.onLost().catch((err) => this.logger.error({ err, lease: this.name }, 'stopping the leased work failed'));
      await this.client?.query('SELECT pg_advisory_unlock($1::bigint)', [this.key]).catch(() => undefined);
      this.logger.info({ lease: this.name }, 'lease released');
    }
    const client = this.client;
    this.client = null;
    await Promise.race([client?.end().catch(() => undefined), new Promise((r) => setTimeout(r, this.queryTimeoutMs).unref())]);
  }

  private get queryTimeoutMs(): number {
    return Math.max(1000, QUERY_CHECKS * this.checkMs);
  }

  private get idleTimeoutMs(): number {
    return Math.max(5000, IDLE_CHECKS * this.checkMs);
  }
}
