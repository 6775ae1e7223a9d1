/**
 * Issue 14 part 6: the relay lease when its holder goes silent WITHOUT closing its connection (a
 * node that crashes or is cut off: no FIN, no RST). A SIGKILL closes the socket and PostgreSQL
 * drops the session at once (relay-lease.kafka.test.ts); a silent peer keeps the session, and with
 * it the advisory lock, until TCP keepalive gives up (two hours by default). Here the holder talks to
 * PostgreSQL through a proxy that is frozen (bytes no longer forwarded, sockets left open): the
 * holder must give the lease up (its check times out) and the other instance must take it over
 * within seconds, in that order.
 */
import * as net from 'node:net';
import { PostgresAdvisoryLease } from '../../apps/metering/src/infra/lease';
import { PG_URL } from '../event-store/pg-test-db';

jest.setTimeout(60_000);
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP proxy to PostgreSQL that can stop forwarding while keeping every socket open. */
class FreezableProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  frozen = false;

  async start(upstream: URL): Promise<number> {
    this.server = net.createServer((client) => {
      const server = net.connect(Number(upstream.port || 5432), upstream.hostname);
      this.sockets.add(client).add(server);
      const forward = (from: net.Socket, to: net.Socket) => from.on('data', (d) => (this.frozen ? undefined : to.write(d)));
      forward(client, server);
      forward(server, client);
      // Frozen, a close is not passed on either (a cut-off node's FIN never arrives).
      const close = () => this.frozen || (client.destroy(), server.destroy());
      client.on('error', close).on('close', close);
      server.on('error', close).on('close', close);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }
}

test('a holder that goes silent without closing its connection loses the lease, and the other instance takes it over within seconds', async () => {
  const proxy = new FreezableProxy();
  const viaProxy = new URL(PG_URL);
  viaProxy.port = String(await proxy.start(new URL(PG_URL)));
  const name = `frozen-lease-${process.pid}-${Date.now()}`;
  const events: string[] = [];
  const a = new PostgresAdvisoryLease(viaProxy.toString(), name, log, 200);
  const b = new PostgresAdvisoryLease(PG_URL, name, log, 200);
  try {
    await a.start(async () => void events.push('a acquired'), async () => void events.push('a lost'));
    await b.start(async () => void events.push('b acquired'), async () => void events.push('b lost'));
    await sleep(600);
    expect([a.held, b.held]).toEqual([true, false]);

    proxy.frozen = true;
    const frozenAt = Date.now();
    for (const deadline = Date.now() + 20_000; !b.held && Date.now() < deadline; ) await sleep(100);
    const tookOverMs = Date.now() - frozenAt;
    expect(b.held).toBe(true);
    expect(a.held).toBe(false);
    // The silent holder stopped its work before the other started it.
    expect(events).toEqual(['a acquired', 'a lost', 'b acquired']);
    expect(tookOverMs).toBeLessThan(10_000);
  } finally {
    await b.stop();
    proxy.frozen = false;
    await Promise.race([a.stop(), new Promise((r) => setTimeout(r, 3000).unref())]);
    await proxy.stop();
  }
});
