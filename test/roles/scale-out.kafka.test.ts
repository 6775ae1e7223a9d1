/**
 * Issue 14 part 6: scale-out on PostgreSQL. Two replicas of every role (ingest, projector,
 * scheduler, api) as processes of the built service on ONE PostgreSQL schema and ONE broker, while
 * every process is SIGKILLed once at a random moment (and restarted):
 *
 *  - the workload (the fault run's, test/support/workload/faults.ts, seeded): subscriptions, usage (some late), upgrades,
 *    anchors whose reset boundaries fall due during the run; every event delivered 1-3 times, some
 *    copies with an empty key (another partition, so two ingest consumers race on one Space). Most
 *    goes straight to Kafka; the upgrades also go through the api replicas (PUT subscription: a
 *    direct append racing the Kafka copies), and part of the last usage through POST /v1/events
 *    (the api replicas publish it to Kafka);
 *  - processes (4 by default, each role in two of them, so a kill takes out one replica of two roles;
 *    SCALE_OUT_SPLIT=1: 8 processes, one role each): ingest+projector, ingest+scheduler,
 *    projector+api, scheduler+api. Each is SIGKILLed once, in a seeded order, 1.5-4 s apart, while
 *    the workload flows; a kill does not wait for the previous victim to be back (8 processes: one
 *    replica of each role is killed).
 *
 * At the end: every Space's usage screen (through the api replicas) equals the independent
 * reference model; recorded inbound events per Space equal the model (nothing lost or doubled);
 * every reset boundary and every threshold reached Kafka under exactly one id, and the store holds
 * no reset or threshold twice; the read models (balances and the usage breakdown) equal a fresh
 * rebuild into another schema, field for field, and the audit finds no difference; and the apply
 * probe: per Space, the usage events and amounts the balance and breakdown read models counted equal
 * those stored (an event applied twice by two projector replicas would count twice).
 */
import * as fs from 'node:fs';
import { Client } from 'pg';
import { PostgresEventStore } from '@metering/event-store';
import type { Messaging } from '@metering/messaging';
import { auditSpace } from '../../apps/metering/src/admin/audit';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { PostgresBreakdownReadModel } from '../../apps/metering/src/projection/breakdown/postgres-breakdown-read-model';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { rebuildBalances } from '../../apps/metering/src/projection/rebuild';
import { Supervisor, coveredBoundaries, mapLimit, pgProbe, produceAll } from '../../scripts/torture/torture';
import { type OutMsg, TortureWorkload, iso, prng } from '../support/workload';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';
import { MAIN, tempDir } from '../support/app-process';
import { TopicCollector, kafkaEnv, testMessaging, testTopics } from '../support/kafka-app';
import { REF_POOLS, ReferenceModel } from '../support/reference-model';

jest.setTimeout(240_000);

const SEED = Number(process.env.SCALE_OUT_SEED ?? 14);
const EVENTS = Number(process.env.SCALE_OUT_EVENTS ?? 1200);
const SPACES = Number(process.env.SCALE_OUT_SPACES ?? 50);
const LAYOUT =
  process.env.SCALE_OUT_SPLIT === '1'
    ? ['ingest', 'ingest', 'projector', 'projector', 'scheduler', 'scheduler', 'api', 'api']
    : ['ingest,projector', 'ingest,scheduler', 'projector,api', 'scheduler,api'];
/** Boundaries of the anchors that reset during the run fall this long after the workload's t0. */
const RESET_WINDOW: [number, number] = [6000, 18_000];
const INBOUND_TYPES = ['SubscriptionChanged', 'GenerationRecorded', 'BatchExportRecorded'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`scale-out on PostgreSQL: ${LAYOUT.length} processes (two replicas of each role), one schema, one broker, every process SIGKILLed once: exact totals, every reset and threshold once, no event applied twice`, async () => {
  const started = Date.now();
  const lines: string[] = [];
  const log = (l: string) => lines.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${l}`);
  const schema = freshSchemaName('scaleout');
  const rebuiltSchema = `${schema}_rb`;
  const topics = testTopics();
  const messaging: Messaging = testMessaging();
  const env: Record<string, string> = {
    EVENT_STORE: 'postgres',
    DATABASE_URL: PG_URL,
    PG_SCHEMA: schema,
    ...kafkaEnv(topics, `scaleout-${schema.slice(-8)}`, 4),
    SCHEDULER_INTERVAL_MS: '500',
    RELAY_LEASE_CHECK_MS: '300',
    PROJECTION_POLL_MS: '100',
  };
  const dirs = LAYOUT.map(() => tempDir('metering-scaleout-'));
  const sups = LAYOUT.map((roles, i) => new Supervisor(MAIN, { ...env, ROLES: roles }, dirs[i], (l) => log(`[${i}:${roles}] ${l}`)));
  const has = (i: number, role: string) => LAYOUT[i].split(',').includes(role);
  const apiSups = sups.filter((_, i) => has(i, 'api'));
  const probe = pgProbe(PG_URL, schema);
  const collectors: TopicCollector[] = [];
  const pg = new Client({ connectionString: PG_URL });
  await pg.connect();
  const q = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => (await pg.query(sql.replaceAll('$S', `"${schema}"`), params)).rows as T[];
  let apiRetries = 0;
  const kills: string[] = [];
  try {
    // Topics first (as a deploy would), then every process at once (migrations are serialised by advisory locks).
    await messaging.ensureTopics(Object.values(topics).map((name) => ({ name, partitions: 4 })));
    await Promise.all(sups.map((s) => s.start()));
    for (const s of sups) if (s.startError) throw s.startError;
    log('all processes up');
    const thresholds = await new TopicCollector(messaging, topics.thresholdCrossed).start();
    const resets = await new TopicCollector(messaging, topics.periodReset).start();
    collectors.push(thresholds, resets);

    const t0 = Date.now();
    const w = new TortureWorkload({ seed: SEED, spaces: SPACES, events: EVENTS, resetWindowMs: RESET_WINDOW, poisonRate: 0, lateRate: 0.04, tag: `so${SEED}` }, t0);

    /** One of the api replicas, round robin; on a failure (killed, restarting) the other one. */
    let rr = 0;
    const viaApi = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> => {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        const app = apiSups[rr++ % apiSups.length].app;
        if (app)
          try {
            const r = await fetch(`${app.url}${path}`, {
              method,
              ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
              signal: AbortSignal.timeout(15_000),
            });
            const text = await r.text();
            if (r.status < 500) return { status: r.status, body: text ? JSON.parse(text) : undefined };
          } catch {
            /* killed or restarting: the other replica */
          }
        apiRetries++;
        await sleep(100);
      }
      throw new Error(`${method} ${path}: no api replica answered`);
    };
    const inboundRecorded = async () => {
      const c = await probe.countByType();
      return INBOUND_TYPES.reduce((a, t) => a + (c[t] ?? 0), 0);
    };
    const converge = async (what: string) => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const n = await inboundRecorded();
        if (n >= w.stats.unique) return log(`${what}: ${n}/${w.stats.unique} inbound events recorded`);
        if (Date.now() > deadline) throw new Error(`${what}: only ${n}/${w.stats.unique} inbound events recorded after 90 s\n${lines.slice(-40).join('\n')}`);
        await sleep(250);
      }
    };

    // Faults: every process (8 processes: one of each role) SIGKILLed once, in a seeded order, at random moments.
    const rand = prng(SEED ^ 0x5ca1e);
    const order = LAYOUT.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const victims = process.env.SCALE_OUT_SPLIT === '1' ? order.filter((i) => order.findIndex((k) => LAYOUT[k] === LAYOUT[i]) === order.indexOf(i)) : order;
    // A kill does not wait for the previous victim to be back: two processes may be down at once.
    const chaos = (async () => {
      const restarts: Promise<void>[] = [];
      for (const i of victims) {
        await sleep(1500 + rand() * 2500);
        const at = await inboundRecorded();
        kills.push(`${LAYOUT[i]} at ${at}/${w.stats.unique}`);
        log(`fault: SIGKILL process ${i} (${LAYOUT[i]}) with ${at}/${w.stats.unique} inbound events recorded`);
        restarts.push(sups[i].kill().then(() => void log(`process ${i} (${LAYOUT[i]}) restarted`)));
      }
      await Promise.all(restarts);
    })();
    chaos.catch(() => undefined); // awaited below

    // Reads through the api replicas all along: a killed replica's calls go to the other one.
    let apiReads = 0;
    let reading = true;
    const reader = (async () => {
      const pickSpace = prng(SEED ^ 0xa11);
      while (reading) {
        const id = w.plans[Math.floor(pickSpace() * w.plans.length)].id;
        const r = await viaApi('GET', `/v1/spaces/${encodeURIComponent(id)}/usage`);
        if (r.status !== 200) throw new Error(`GET usage of ${id}: ${r.status} ${JSON.stringify(r.body)}`);
        apiReads++;
        await sleep(150);
      }
    })();
    reader.catch(() => undefined); // awaited below; no unhandled rejection meanwhile

    // The workload is fed in small slices, so that the kills fall while it flows.
    const paced = async (msgs: OutMsg[]) => {
      for (let i = 0; i < msgs.length; i += 50) {
        await produceAll(messaging, topics, msgs.slice(i, i + 50), log);
        await sleep(250);
      }
    };
    // Phase 1: subscriptions (Kafka).
    const subs = w.phaseSubscriptions();
    await paced(subs);
    await converge('subscriptions');
    // Phase 2: usage, part A (Kafka).
    const usageTotal = Math.max(0, EVENTS - w.stats.unique - w.upgradeCount());
    const half = Math.floor(usageTotal / 2);
    await paced(w.phaseUsage(half, Date.now(), true));
    await converge('usage A');
    // Phase 3: upgrades, through the api replicas (direct appends) AND Kafka (with copies), racing.
    const ups = w.phaseUpgrades(Date.now());
    const upgradeBodies = new Map<string, Record<string, unknown>>();
    for (const m of ups) {
      const b = JSON.parse(m.value) as Record<string, unknown>;
      upgradeBodies.set(String(b.eventId), b);
    }
    const putOutcomes: string[] = [];
    await Promise.all([
      paced(ups),
      mapLimit([...upgradeBodies.values()], 4, async (b) => {
        const { spaceId, ...body } = b;
        const r = await viaApi('PUT', `/v1/spaces/${encodeURIComponent(String(spaceId))}/subscription`, body);
        if (r.status !== 200) throw new Error(`PUT subscription of ${String(spaceId)}: ${r.status} ${JSON.stringify(r.body)}`);
        putOutcomes.push(r.body.outcome);
      }),
    ]);
    await converge('upgrades');
    // Phase 4: usage, part B: the Spaces of every fourth plan through POST /v1/events (the api
    // replicas publish to Kafka), the rest straight to Kafka.
    const usageB = w.phaseUsage(usageTotal - half, Date.now(), false);
    const viaHttp = new Set(w.plans.filter((_, i) => i % 4 === 0).map((p) => p.id));
    const httpEvents: Record<string, unknown>[] = [];
    const direct: OutMsg[] = [];
    for (const m of usageB) {
      const b = JSON.parse(m.value) as Record<string, unknown>;
      if (viaHttp.has(String(b.spaceId))) httpEvents.push({ type: m.topic === 'gen' ? 'generation-performed' : 'batch-exported', ...b });
      else direct.push(m);
    }
    const chunks: Record<string, unknown>[][] = [];
    for (let i = 0; i < httpEvents.length; i += 40) chunks.push(httpEvents.slice(i, i + 40));
    await Promise.all([
      paced(direct),
      mapLimit(chunks, 2, async (chunk) => {
        const r = await viaApi('POST', '/v1/events', chunk);
        if (r.status !== 202 || r.body.queued !== chunk.length) throw new Error(`POST /v1/events: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }),
    ]);
    log(`phase 4: ${direct.length} usage messages to Kafka, ${httpEvents.length} through the api`);
    await chaos;
    reading = false;
    await reader;
    await converge('final');

    // The boundaries placed in the run must have fallen due and had a scheduler pass.
    const windowEnd = t0 + RESET_WINDOW[1] + 2000;
    if (Date.now() < windowEnd) await sleep(windowEnd - Date.now());
    const cutoff = Date.now() - 1500;
    const ids = [...new Set([...w.model.spaceIds(), ...w.plans.map((p) => p.id)])];
    const expectedResets = new Map<string, number[]>();
    for (const id of ids) expectedResets.set(id, w.model.resets(id, cutoff));
    const resetsExpected = [...expectedResets.values()].reduce((a, b) => a + b.length, 0);
    const resetsDuringRun = [...expectedResets.values()].reduce((a, b) => a + b.filter((x) => x >= t0).length, 0);
    const header = (m: { headers: Record<string, string> }) => m.headers['event-id'];
    const kafkaIds = (c: TopicCollector) => new Set(c.messages.map(header));

    // Outbound: every stored threshold and reset on Kafka, every expected boundary covered.
    let storedThr = new Set<string>();
    let storedResets = new Set<string>();
    for (const deadline = Date.now() + 60_000; ; ) {
      storedThr = await probe.idsOfType(['ThresholdCrossed']);
      storedResets = await probe.idsOfType(['PeriodReset']);
      const pending = [...storedThr].filter((x) => !kafkaIds(thresholds).has(x)).length + [...storedResets].filter((x) => !kafkaIds(resets).has(x)).length;
      const covered = coveredBoundaries(resets.messages, expectedResets, header).size;
      if ((pending === 0 && covered >= resetsExpected) || Date.now() > deadline) {
        log(`outbound: ${pending} stored not on Kafka; boundaries on Kafka ${covered}/${resetsExpected}`);
        break;
      }
      await sleep(300);
    }

    // 1. Nothing lost, nothing doubled: recorded inbound events per Space and type vs the model.
    const byStream = await probe.countByStreamAndType();
    const countMisses: string[] = [];
    for (const id of ids) {
      const s = w.model.space(id);
      const got = byStream.get(`space-${id}`) ?? {};
      const usage = (got.GenerationRecorded ?? 0) + (got.BatchExportRecorded ?? 0);
      if (usage !== s.usageCount) countMisses.push(`${id}: ${usage} usage events recorded, model ${s.usageCount}`);
      if ((got.SubscriptionChanged ?? 0) !== s.subscriptionCount) countMisses.push(`${id}: ${got.SubscriptionChanged ?? 0} subscriptions recorded, model ${s.subscriptionCount}`);
    }
    expect(countMisses).toEqual([]);

    // 2. Every usage screen, read through the api replicas, equals the model (the projection may lag a little).
    let viewMisses: string[] = [];
    for (let round = 0; round < 20; round++) {
      const checks = await mapLimit(ids, 6, async (id) => {
        const r = await viaApi('GET', `/v1/spaces/${encodeURIComponent(id)}/usage`);
        const v = r.status === 200 ? r.body : null;
        if (!v) return `${id}: no usage screen`;
        const e = w.model.view(id, Date.parse(v.asOf ?? iso(Date.now())));
        const diffs: string[] = [];
        if (v.plan !== e.plan || v.cycle !== e.cycle) diffs.push(`plan ${v.plan}/${v.cycle} != ${e.plan}/${e.cycle}`);
        if (Date.parse(v.periodStart) !== e.periodStart) diffs.push(`periodStart ${v.periodStart} != ${iso(e.periodStart)}`);
        for (const p of REF_POOLS) {
          if (v.pools[p].used !== e.used[p]) diffs.push(`${p} used ${v.pools[p].used} != ${e.used[p]}`);
          if (v.pools[p].limit !== e.limits[p]) diffs.push(`${p} limit ${v.pools[p].limit} != ${e.limits[p]}`);
        }
        return diffs.length ? `${id}: ${diffs.join('; ')}` : null;
      });
      viewMisses = checks.filter((x): x is string => x !== null);
      if (viewMisses.length === 0) break;
      await sleep(500);
    }
    expect(viewMisses).toEqual([]);
    log('usage screens equal the model');

    // 3. Resets: each (Space, boundary) on Kafka under exactly one id, every model boundary there,
    // nothing that is not a boundary; every stored reset on Kafka; none twice in the store.
    const resetMisses: string[] = [];
    const resetsBy = coveredBoundaries(resets.messages, expectedResets, header);
    for (const [k, idsOf] of resetsBy) if (idsOf.size !== 1) resetMisses.push(`reset ${k} reached Kafka under ${idsOf.size} ids`);
    for (const [id, bs] of expectedResets) for (const b of bs) if (!resetsBy.has(`${id}|${b}`)) resetMisses.push(`reset of ${id} at ${iso(b)} never reached Kafka`);
    for (const k of resetsBy.keys()) {
      const [id, b] = [k.slice(0, k.lastIndexOf('|')), Number(k.slice(k.lastIndexOf('|') + 1))];
      if (b <= cutoff && !(expectedResets.get(id) ?? []).includes(b)) resetMisses.push(`reset of ${id} at ${iso(b)} is not a boundary of the model`);
    }
    for (const x of storedResets) if (!kafkaIds(resets).has(x)) resetMisses.push(`stored reset ${x} never reached Kafka`);
    expect(resetMisses).toEqual([]);
    expect(resetsDuringRun).toBeGreaterThan(0);
    expect(
      await q(`SELECT stream_name, data->>'periodStart' AS p, count(*)::int AS n FROM $S.events WHERE type = 'PeriodReset' GROUP BY 1, 2 HAVING count(*) > 1`),
    ).toEqual([]);

    // 4. Thresholds: one id per (Space, pool, period, threshold) on Kafka, the same set as stored,
    // every one the model says the open period reached; none twice in the store.
    const thrMisses: string[] = [];
    const thrBy = new Map<string, Set<string>>();
    for (const m of thresholds.messages) {
      const body = JSON.parse(m.value.toString('utf8'));
      const k = `${body.data.spaceId}|${body.data.pool}|${Date.parse(body.data.periodStart)}|${body.data.threshold}`;
      if (!thrBy.has(k)) thrBy.set(k, new Set());
      thrBy.get(k)!.add(header(m));
    }
    for (const [k, idsOf] of thrBy) if (idsOf.size !== 1) thrMisses.push(`threshold ${k} reached Kafka under ${idsOf.size} ids`);
    for (const x of storedThr) if (!kafkaIds(thresholds).has(x)) thrMisses.push(`stored threshold ${x} never reached Kafka`);
    for (const x of kafkaIds(thresholds)) if (!storedThr.has(x)) thrMisses.push(`threshold ${x} on Kafka is not stored`);
    const checkAt = Date.now();
    for (const id of ids) {
      const v = w.model.view(id, checkAt);
      for (const pool of REF_POOLS)
        for (const t of w.model.catalog.thresholds)
          if (ReferenceModel.reaches(v.used[pool], v.limits[pool], t) && !thrBy.has(`${id}|${pool}|${v.periodStart}|${t}`))
            thrMisses.push(`threshold ${t} % of ${pool} of ${id} (period from ${iso(v.periodStart)}) was reached (${v.used[pool]}/${v.limits[pool]}) but never notified`);
    }
    expect(thrMisses).toEqual([]);
    expect(thrBy.size).toBeGreaterThan(0);
    expect(
      await q(
        `SELECT stream_name, data->>'pool' AS pool, data->>'periodStart' AS p, data->>'threshold' AS t, count(*)::int AS n
           FROM $S.events WHERE type = 'ThresholdCrossed' GROUP BY 1, 2, 3, 4 HAVING count(*) > 1`,
      ),
    ).toEqual([]);

    // The projections reach the head of the Space streams, then every process stops.
    const head = async () =>
      (
        await q<{ head: string | null; balances: string | null; breakdown: string | null }>(
          `SELECT (SELECT max(global_position)::text FROM $S.events WHERE starts_with(stream_name, 'space-')) AS head,
                  (SELECT position::text FROM $S.rm_checkpoints WHERE name = 'balances') AS balances,
                  (SELECT position::text FROM $S.rm_breakdown_checkpoint WHERE name = 'breakdown') AS breakdown`,
        )
      )[0];
    for (const deadline = Date.now() + 30_000; ; ) {
      const h = await head();
      if ((h.balances === h.head && h.breakdown === h.head) || Date.now() > deadline) break;
      await sleep(200);
    }
    await Promise.all(sups.map((s) => s.stop()));
    log('all processes stopped');
    const h = await head();
    expect([h.balances, h.breakdown]).toEqual([h.head, h.head]);
    expect(sups.reduce((a, s) => a + s.unexpectedExits, 0)).toBe(0);

    // 5. The apply probe: per Space, what the balance and breakdown read models counted equals
    // what is stored (usage events and amounts per pool). A page applied twice would count twice.
    type Sums = { space_id: string; n: string; img: string; vid: string; exp: string };
    const key = (r: Sums) => `${r.space_id}|${r.n}|${r.img}|${r.vid}|${r.exp}`;
    const stored = await q<Sums>(`
      SELECT substr(stream_name, 7) AS space_id, count(*)::text AS n,
             sum(CASE WHEN type = 'GenerationRecorded' AND data->>'pool' = 'ai_image_credits' THEN (data->>'credits')::bigint ELSE 0 END)::text AS img,
             sum(CASE WHEN type = 'GenerationRecorded' AND data->>'pool' = 'ai_video_credits' THEN (data->>'credits')::bigint ELSE 0 END)::text AS vid,
             sum(CASE WHEN type = 'BatchExportRecorded' THEN (data->>'images')::bigint ELSE 0 END)::text AS exp
        FROM $S.events WHERE starts_with(stream_name, 'space-') AND type IN ('GenerationRecorded', 'BatchExportRecorded')
       GROUP BY 1 ORDER BY substr(stream_name, 7) COLLATE "C"`);
    const balances = await q<Sums>(`
      SELECT space_id, sum(usage_events)::text AS n, sum(ai_image_credits)::text AS img, sum(ai_video_credits)::text AS vid, sum(batch_exports)::text AS exp
        FROM $S.rm_usage GROUP BY space_id HAVING sum(usage_events) > 0 ORDER BY space_id COLLATE "C"`);
    const breakdown = await q<Sums>(`
      SELECT space_id, sum(events)::text AS n, sum(ai_image_credits)::text AS img, sum(ai_video_credits)::text AS vid, sum(batch_exports)::text AS exp
        FROM $S.rm_breakdown GROUP BY space_id ORDER BY space_id COLLATE "C"`);
    expect(stored.length).toBeGreaterThan(SPACES / 2);
    expect(balances.map(key)).toEqual(stored.map(key));
    expect(breakdown.map(key)).toEqual(stored.map(key));
    // ... and equals the model (every usage event once).
    const modelSums = ids
      .map((id) => {
        const s = w.model.space(id);
        const t = { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 };
        for (const u of s.used.values()) for (const p of REF_POOLS) t[p] += u[p];
        return { space_id: id, n: String(s.usageCount), img: String(t.ai_image_credits), vid: String(t.ai_video_credits), exp: String(t.batch_exports) };
      })
      .filter((r) => r.n !== '0')
      .sort((a, b) => (a.space_id < b.space_id ? -1 : a.space_id > b.space_id ? 1 : 0));
    expect(stored.map(key)).toEqual(modelSums.map(key));

    // 6. The live read models equal a fresh rebuild (another schema, from the same store), field
    // for field, and the audit (a replay of every stream) finds no difference.
    const store = new PostgresEventStore({ url: PG_URL, schema });
    const live = new PostgresBalanceReadModel({ url: PG_URL, schema });
    const rebuilt = new PostgresBalanceReadModel({ url: PG_URL, schema: rebuiltSchema });
    try {
      await rebuilt.init();
      const rebuiltBreakdown = new PostgresBreakdownReadModel(rebuilt.pool, rebuiltSchema);
      await rebuiltBreakdown.init();
      await rebuildBalances(store, rebuilt, { followers: [rebuiltBreakdown] });
      expect(await live.dump()).toEqual(await rebuilt.dump());
      expect(await new PostgresBreakdownReadModel(live.pool, schema).dump()).toEqual(await rebuiltBreakdown.dump());
      const catalog = new CatalogService(store, systemIds, null);
      await catalog.init();
      const differences = [];
      for (const id of ids) differences.push(...(await auditSpace(store, live, catalog.catalog, id)).differences.map((d) => `${id}: ${d.message}`));
      expect(differences).toEqual([]);
    } finally {
      await rebuilt.close();
      await live.close();
      await store.close();
    }

    expect(kills).toHaveLength(victims.length);
    const figures = [
      `scale-out: ${LAYOUT.length} processes (${LAYOUT.join(' | ')}), seed ${SEED}, ${SPACES} Spaces, ${Math.round((Date.now() - started) / 1000)} s`,
      `events: ${w.stats.unique} unique (${w.stats.subscriptions} subscriptions, ${w.stats.upgrades} upgrades, ${w.stats.usage} usage of which ${w.stats.late} late), ${w.stats.deliveries} deliveries (${w.stats.emptyKeyCopies} copies on another partition), ${httpEvents.length} usage and ${upgradeBodies.size} upgrades through the api (PUT outcomes: ${['accepted', 'duplicate'].map((o) => `${putOutcomes.filter((x) => x === o).length} ${o}`).join(', ')})`,
      `faults: ${kills.length} SIGKILLs (${kills.join(', ')}); ${apiReads} usage reads through the api during the run, ${apiRetries} api calls retried on the other replica`,
      `resets: ${resetsExpected} boundaries (${resetsDuringRun} during the run) in ${storedResets.size} PeriodReset events; thresholds: ${storedThr.size} stored = ${thrBy.size} distinct on Kafka; ${thresholds.messages.length + resets.messages.length} outbound messages`,
    ];
    log('checks done');
    process.stdout.write(`${figures.join('\n')}\n${lines.filter((l) => !l.includes('] ')).join('\n')}\n`);
  } catch (err) {
    process.stdout.write(`${lines.slice(-80).join('\n')}\n`);
    throw err;
  } finally {
    for (const s of sups) await s.stop().catch(() => undefined);
    for (const c of collectors) await c.stop().catch(() => undefined);
    await probe.close();
    await pg.end().catch(() => undefined);
    await dropSchema(schema).catch(() => undefined);
    await dropSchema(rebuiltSchema).catch(() => undefined);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});
