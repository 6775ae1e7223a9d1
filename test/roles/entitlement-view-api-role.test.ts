/**
 * Issue 14 part 4: the entitlement check answers from an in-memory view kept fresh from the store's
 * global feed. Two built service processes on one store, PostgreSQL (one schema) and SQLite (one
 * DATA_DIR, so the same store and read-model files): A (every role, so it ingests over HTTP)
 * appends; B (ROLES=api only: no ingest, no projector) answers the check. B must count
 * an event appended by A within the stated bound: every answer whose `asOf` is at or after the
 * append's acknowledgement counts it, and `asOf` trails the request by at most
 * ENTITLEMENT_VIEW_POLL_MS plus one read of the store (a second of slack here: the machine is shared).
 */
import { randomUUID } from 'node:crypto';
import { type RunningApp, api } from '../support/app-process';
import { sharedStore } from '../support/shared-store';

const POLL_MS = 100;
/** Slack over POLL_MS for one read of the store, the HTTP round trips and a loaded 2-core machine. */
const SLACK_MS = 1000;
jest.setTimeout(120_000);

const gen = (spaceId: string, generations: number) => ({
  type: 'generation-performed', eventId: randomUUID(), spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations, occurredAt: new Date().toISOString(),
});

interface Answer { used: number; limit: number; asOf: string; allowed: boolean }

describe.each(['postgres', 'sqlite'] as const)('entitlement view across processes (%s)', (kind) => {
  // SQLite: B opens A's files (one DATA_DIR on one host).
  const store = sharedStore(kind, 'ev', { LOG_LEVEL: 'warn', ENTITLEMENT_VIEW_POLL_MS: String(POLL_MS) });
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    a = await store.start();
    b = await store.start({ ROLES: 'api' });
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await store.remove();
  });

  const check = async (space: string): Promise<{ sentAt: number; answer: Answer }> => {
    const sentAt = Date.now();
    const r = await api<Answer>(b.url, 'POST', `/v1/spaces/${space}/entitlements/check`, { feature: 'ai_backgrounds', generations: 1 });
    expect(r.status).toBe(200);
    return { sentAt, answer: r.body };
  };

  /** Checks on B until the answer's usage reaches `used`; every answer on the way obeys asOf. */
  async function seenWithinBound(space: string, ackAt: number, used: number, field: 'used' | 'limit' = 'used'): Promise<number> {
    for (;;) {
      const { sentAt, answer } = await check(space);
      const asOf = Date.parse(answer.asOf);
      // asOf trails the request by at most the poll interval and one read.
      expect(sentAt - asOf).toBeLessThanOrEqual(POLL_MS + SLACK_MS);
      // The stated bound: an answer as of the acknowledgement or later counts the event.
      if (asOf >= ackAt) expect(answer[field]).toBe(used);
      if (answer[field] === used) return Date.now() - ackAt;
      expect(Date.now() - ackAt).toBeLessThanOrEqual(POLL_MS + SLACK_MS);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('B (api only) counts usage A appended, within the bound, for a Space in its view and for one it loads on a miss', async () => {
    const space = `ev-${randomUUID().slice(0, 8)}`;
    expect((await api(a.url, 'PUT', `/v1/spaces/${space}/subscription`, { plan: 'pro', cycle: 'monthly' })).status).toBe(200);
    // A miss: B loads the Space (read model row + the stream after it) and keeps it.
    const first = await check(space);
    expect(first.answer).toMatchObject({ used: 0, limit: 125, allowed: true });

    const posted = await api(a.url, 'POST', '/v1/events', gen(space, 2));
    const ackAt = Date.now();
    expect(posted.body.accepted).toBe(1);
    const delay = await seenWithinBound(space, ackAt, 2 * 2); // ai_backgrounds costs 2 credits
    expect(delay).toBeLessThanOrEqual(POLL_MS + SLACK_MS);

    // Several events in a row, then an upgrade (a new limit): each reaches B the same way.
    for (let i = 0; i < 3; i++) await api(a.url, 'POST', '/v1/events', gen(space, 1));
    await seenWithinBound(space, Date.now(), 4 + 3 * 2);
    expect((await api(a.url, 'PUT', `/v1/spaces/${space}/subscription`, { plan: 'max', cycle: 'monthly' })).status).toBe(200);
    await seenWithinBound(space, Date.now(), 375, 'limit');

    // A Space B has never seen: its first check (a miss) already counts what A appended.
    const other = `ev-${randomUUID().slice(0, 8)}`;
    await api(a.url, 'PUT', `/v1/spaces/${other}/subscription`, { plan: 'pro', cycle: 'monthly' });
    await api(a.url, 'POST', '/v1/events', gen(other, 3));
    expect((await check(other)).answer).toMatchObject({ used: 6, limit: 125 });
  });

  it('the answer keeps every field it had, plus asOf (ISO)', async () => {
    const { answer } = await check(`ev-${randomUUID().slice(0, 8)}`);
    expect(Object.keys(answer).sort()).toEqual(
      ['allowed', 'asOf', 'catalogVersion', 'cost', 'limit', 'message', 'periodEnd', 'pool', 'reason', 'remaining', 'spaceId', 'used'].sort(),
    );
    expect(new Date(answer.asOf).toISOString()).toBe(answer.asOf);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/^metering_entitlement_view_spaces [1-9]\d*$/m);
    expect(metrics).toMatch(/^metering_entitlement_view_lookups_total\{result="hit"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^metering_entitlement_view_staleness_seconds \d/m);
  });
});
