/**
 * Issue 19: the fuzz test that stays. fast-check draws arbitrary JSON values and byte strings
 * (test/support/fuzz-arbitraries.ts) and sends them through POST /v1/events, PUT .../subscription,
 * the entitlement check, every query parameter, and the Kafka ingest handler.
 * Properties: never a 5xx, never a thrown batch, every valid event of a mixed request or batch is
 * stored, every other message is dead-lettered with its bytes, and the process keeps serving.
 *
 * Short form in the test command (FUZZ_RUNS unset: 60-150 runs per property); the long form is
 * `npm run fuzz` (FUZZ_RUNS=20000 by default; FUZZ_SEED to replay a failure).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { SqliteEventStore } from '@metering/event-store';
import type { Messaging } from '@metering/messaging';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemClock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { DEAD_LETTER_RECORDED, DeadLetterRecorder, deadLetterStream } from '../../apps/metering/src/kafka/dead-letters';
import { KafkaIngest, checkMessage } from '../../apps/metering/src/kafka/kafka-ingest';
import { kafkaSettingsFromEnv } from '../../apps/metering/src/kafka/kafka-settings';
import {
  type InboundKind,
  applyMutation,
  certainPoison,
  hostileText,
  hostileBytes,
  hostileJson,
  mutation,
  oddNumbers,
  oddStrings,
  toJson,
} from '../support/fuzz-arbitraries';
import { type TestApp, call, inProcessApp } from '../support/in-process-app';

const LONG = Number(process.env.FUZZ_RUNS ?? 0);
const runs = (short: number) => ({ numRuns: LONG > 0 ? LONG : short, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) });
jest.setTimeout(LONG > 0 ? 3_600_000 : 120_000);

const KINDS: InboundKind[] = ['generation-performed', 'batch-exported', 'subscription-changed'];
const iso = (ms: number) => new Date(ms).toISOString();
let seq = 0;
const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;

/** A valid event of `kind` for `spaceId` (unique eventId), accepted by the rules whatever the Space's plan. */
function validEvent(kind: InboundKind, spaceId: string, pick: number): Record<string, unknown> {
  const eventId = `fz-${tag}-${seq++}`;
  const at = iso(Date.now() - 60_000);
  if (kind === 'generation-performed')
    return { eventId, spaceId, userId: `u${pick % 3}`, feature: ['ai_backgrounds', 'virtual_model', 'ai_video'][pick % 3], medium: pick % 3 === 2 ? 'video' : 'image', generations: 1 + (pick % 4), occurredAt: at };
  if (kind === 'batch-exported') return { eventId, spaceId, userId: 'u', batchId: `b${pick}`, images: 1 + (pick % 100), platform: 'web', occurredAt: at };
  const plans = [
    { plan: 'pro', cycle: 'monthly' },
    { plan: 'max', cycle: 'weekly' },
    { plan: 'enterprise', cycle: 'monthly', customLimits: { ai_image_credits: 5, ai_video_credits: 0, batch_exports: 1 } },
  ];
  return { eventId, spaceId, effectiveAt: iso(Date.now() - 3_600_000), ...plans[pick % plans.length] };
}

const spaceIds = fc.constantFrom('fz-a', 'fz-b', `fz-${'L'.repeat(120)}`, 'FZ:x@y.z_1-2');
const kind = fc.constantFrom(...KINDS);
/** One item of a mixed request: a valid event, a mutated one, or any hostile JSON value. */
const item = fc.oneof(
  { arbitrary: fc.tuple(kind, spaceIds, fc.nat()).map(([k, s, p]) => ({ valid: true as const, k, s, p })), weight: 3 },
  { arbitrary: fc.tuple(kind, spaceIds, fc.nat()).chain(([k, s, p]) => mutation(k).map((m) => ({ valid: false as const, k, s, p, m }))), weight: 3 },
  { arbitrary: hostileJson.map((value) => ({ valid: false as const, value })), weight: 1 },
);
type Item = { valid: true; k: InboundKind; s: string; p: number } | { valid: false; k: InboundKind; s: string; p: number; m: Parameters<typeof applyMutation>[1] } | { valid: false; value: unknown };
const materialize = (it: Item): { valid: boolean; body: unknown } => {
  if ('value' in it) return { valid: false, body: it.value };
  const e = { type: it.k, ...validEvent(it.k, it.s, it.p) };
  return it.valid ? { valid: true, body: e } : { valid: false, body: applyMutation(e, it.m) };
};
/** Percent-encodes the UTF-8 bytes (encodeURIComponent throws on an unpaired surrogate). */
const pct = (s: string): string => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
const segment = fc.oneof(spaceIds, oddStrings).map((s) => pct(s) || '%20');

describe('fuzz: HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await inProcessApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const no5xx = (r: { status: number; text: string }, what: string) => {
    if (r.status >= 500) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
  };

  it('POST /v1/events: never a 5xx; every valid event of a mixed request is stored', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 12 }), async (items) => {
        const made = items.map((i) => materialize(i as Item));
        const text = `[${made.map((m) => toJson(m.body)).join(',')}]`;
        const r = await call(t, 'POST', '/v1/events', text);
        no5xx(r, 'POST /v1/events');
        if (r.status === 400 && r.body?.errors?.[0]?.rule === 'max_json_depth') return; // the whole body is refused, by rule
        expect(r.status).toBe(200);
        made.forEach((m, i) => {
          if (m.valid) expect({ i, outcome: r.body.results[i].outcome, errors: r.body.results[i].errors }).toEqual({ i, outcome: 'accepted', errors: undefined });
        });
      }),
      runs(150),
    );
  });

  it('POST /v1/events with any body (JSON values, raw bytes, any content type): never a 5xx', async () => {
    const body = fc.oneof(hostileJson.map(toJson), hostileBytes.map((b) => b.toString('latin1')));
    const type = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream');
    await fc.assert(
      fc.asyncProperty(body, type, async (b, ct) => {
        no5xx(await call(t, 'POST', '/v1/events', b, { 'content-type': ct }), 'POST /v1/events (raw)');
      }),
      runs(100),
    );
  });

  it('PUT /v1/spaces/:spaceId/subscription and the entitlement check: never a 5xx', async () => {
    const subBody = fc.oneof(
      fc.tuple(fc.nat(), mutation('subscription-changed')).map(([p, m]) => {
        const { eventId: _e, spaceId: _s, ...rest } = validEvent('subscription-changed', 'x', p);
        return applyMutation(rest, m);
      }),
      hostileJson,
    );
    const checkBody = fc.oneof(
      fc.record({ feature: fc.oneof(oddStrings, hostileJson, fc.constant('ai_shadows')), generations: fc.oneof(oddNumbers, hostileJson) }, { requiredKeys: ['feature'] }),
      fc.record({ batchImages: fc.oneof(oddNumbers, hostileJson), platform: fc.oneof(oddStrings, hostileJson, fc.constant('web')) }, { requiredKeys: ['batchImages'] }),
      hostileJson,
    );
    await fc.assert(
      fc.asyncProperty(segment, subBody, checkBody, async (space, sub, check) => {
        no5xx(await call(t, 'PUT', `/v1/spaces/${space}/subscription`, toJson(sub)), 'PUT subscription');
        no5xx(await call(t, 'POST', `/v1/spaces/${space}/entitlements/check`, toJson(check)), 'check');
      }),
      runs(100),
    );
  });

  it('query parameters and path segments: never a 5xx', async () => {
    const value = fc.oneof(oddStrings, oddNumbers.map(String), fc.bigInt().map(String));
    await fc.assert(
      fc.asyncProperty(segment, value, value, value, async (space, a, b, c) => {
        const q = pct;
        for (const url of [
          `/v1/notifications?since=${q(a)}&limit=${q(b)}`,
          `/v1/spaces/${space}/events?fromRevision=${q(a)}&limit=${q(c)}`,
          `/v1/spaces/${space}/usage`,
          `/v1/admin/spaces/${space}/balance?at=${q(a)}`,
          `/v1/admin/spaces/${space}/audit?from=${q(b)}&to=${q(c)}`,
        ])
          no5xx(await call(t, 'GET', url), `GET ${url}`);
      }),
      runs(60),
    );
  });

  it('the process keeps serving', async () => {
    expect((await call(t, 'GET', '/health/live')).status).toBe(200);
    const r = await call(t, 'POST', '/v1/events', [{ type: 'generation-performed', ...validEvent('generation-performed', 'fz-after', 0) }]);
    expect(r.body.accepted).toBe(1);
  });
});

describe('fuzz: Kafka ingest handler', () => {
  let dir: string;
  let store: SqliteEventStore;
  let kafka: KafkaIngest;
  const settings = kafkaSettingsFromEnv({ KAFKA_BROKERS: '127.0.0.1:1' })!;
  const topicOf: Record<InboundKind, string> = {
    'generation-performed': settings.topics.generationPerformed,
    'batch-exported': settings.topics.batchExported,
    'subscription-changed': settings.topics.subscriptionChanged,
  };
  const offsets = new Map<string, number>();
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-fuzz-'));
    store = new SqliteEventStore(path.join(dir, 'metering.db'));
    const catalog = new CatalogService(store, systemIds, null);
    await catalog.init();
    const ingest = new IngestService(store, new SpaceRepository(store), catalog, systemClock, systemIds);
    kafka = new KafkaIngest({} as Messaging, settings, ingest, new DeadLetterRecorder(store, systemIds, Date.now), quiet);
  });
  afterAll(async () => {
    await store?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const key = fc.oneof({ arbitrary: fc.constant<'space' | null>('space'), weight: 4 }, { arbitrary: fc.constant<'space' | null>(null), weight: 1 }, { arbitrary: oddStrings, weight: 1 });
  const message = fc.oneof(
    { arbitrary: fc.tuple(spaceIds, fc.nat(), key).map(([s, p, k]) => ({ valid: true as const, s, p, k })), weight: 3 },
    { arbitrary: fc.tuple(spaceIds, fc.nat(), key, fc.nat()).map(([s, p, k, n]) => ({ valid: false as const, s, p, k, n })), weight: 3 },
    { arbitrary: fc.tuple(hostileBytes, key).map(([bytes, k]) => ({ valid: false as const, bytes, k })), weight: 1 },
    { arbitrary: fc.tuple(hostileJson, key).map(([value, k]) => ({ valid: false as const, bytes: Buffer.from(toJson(value)), k })), weight: 1 },
  );

  it('never throws a batch; valid messages are stored, every other one is dead-lettered once with its original bytes', async () => {
    await fc.assert(
      fc.asyncProperty(kind, fc.array(message, { minLength: 1, maxLength: 15 }), fc.array(fc.nat(), { minLength: 15, maxLength: 15 }), async (k, msgs, mutationSeeds) => {
        const topic = topicOf[k];
        const partition = 0;
        const firstOffset = offsets.get(topic) ?? 0;
        const built = msgs.map((m, i) => {
          if ('bytes' in m) return { valid: false, spaceId: null as string | null, key: m.k === 'space' ? 'fz-a' : m.k, value: m.bytes };
          const event = validEvent(k, m.s, m.p);
          let body: Record<string, unknown> = event;
          if (!m.valid) body = applyMutation(event, fc.sample(mutation(k), { seed: mutationSeeds[i], numRuns: 1 })[0]);
          const keyText = m.k === 'space' ? m.s : m.k;
          return { valid: m.valid && (keyText === null || keyText === '' || keyText === m.s), spaceId: m.s, eventId: event.eventId as string, key: keyText, value: Buffer.from(toJson(body)) };
        });
        offsets.set(topic, firstOffset + built.length);
        const batch = {
          topic,
          partition,
          messages: built.map((b, i) => ({ key: b.key, value: b.value, headers: { h: '\u0000\u001b' }, offset: String(firstOffset + i), timestamp: String(Date.now()) })),
        };
        await kafka.handle(batch); // a throw fails the property
        const letters = new Map<string, { value: string }>();
        for (const e of await store.readStream(deadLetterStream(topic, partition), {}))
          if (e.type === DEAD_LETTER_RECORDED) letters.set(String((e.data as { offset: string }).offset), e.data as { value: string });
        for (let i = 0; i < built.length; i++) {
          const b = built[i];
          const offset = String(firstOffset + i);
          if (b.valid) {
            expect({ offset, dead: letters.has(offset) }).toEqual({ offset, dead: false });
            const stream = await store.readStream(`space-${b.spaceId}`, {});
            expect({ offset, stored: stream.some((e) => JSON.stringify(e.data).includes(`"${b.eventId}"`)) }).toEqual({ offset, stored: true });
          } else if (letters.has(offset)) expect(Buffer.from(letters.get(offset)!.value, 'base64').equals(b.value)).toBe(true);
          else {
            // Not dead-lettered: only a mutation that left the message valid (e.g. a userId replaced
            // by another valid one) may be stored instead. Anything that does not pass the parse
            // step must be in the dead letters.
            const check = checkMessage(batch.messages[i], k, topic);
            expect({ offset, parsed: check.ok, errors: check.ok ? undefined : check.errors }).toEqual({ offset, parsed: true, errors: undefined });
          }
        }
      }),
      runs(100),
    );
  });
});

describe('fuzz: the torture run\'s poison (test/support/workload/poison.ts draws from the same generators)', () => {
  const settings = kafkaSettingsFromEnv({ KAFKA_BROKERS: '127.0.0.1:1' })!;
  it('every certain poison is refused at parse time, and its errors mention what the torture run expects', () => {
    fc.assert(
      fc.property(kind, fc.nat(), fc.boolean(), (k, p, bytes) => {
        const token = 'torture-poison-fz-1';
        const event = { ...validEvent(k, 'fz-a', p), eventId: token };
        return fc.assert(
          fc.property(bytes ? hostileText.map((t) => ({ value: `${token} ${t}`, expect: '"json"' })) : certainPoison(k).map((c) => ({ value: toJson(applyMutation(event, c.mutation)), expect: JSON.stringify(c.expect).slice(1, -1) })), (m) => {
            const check = checkMessage({ key: 'fz-a', value: Buffer.from(m.value), headers: {}, offset: '0', timestamp: '0' }, k, settings.topics.generationPerformed);
            expect(check.ok).toBe(false);
            if (!check.ok) expect(JSON.stringify(check.errors)).toContain(m.expect);
            expect(/torture-poison-[A-Za-z0-9_-]+/.exec(m.value)![0]).toBe(token);
            expect(Buffer.from(m.value).toString('utf8')).toBe(m.value);
          }),
          { numRuns: 5 },
        );
      }),
      runs(40),
    );
  });
});

