/**
 * The end of one fault run (see torture.ts): waiting for the outbound topics, then the checks
 * against the reference model, the dead-letter topic, the outbound topics and the ops audit.
 * Every difference is a miss and counted in the figures.
 */
import { type TopicCollector } from '../../test/support/kafka-app';
import { REF_POOLS, ReferenceModel } from '../../test/support/reference-model';
import { coveredBoundaries } from './figures';
import { type Collected } from './phases';
import { fetchJson, mapLimit, runCli, sleep } from './processes';
import { type TortureRun } from './setup';
import { type OutMsg, iso } from '../../test/support/workload';

const header = (m: { headers: Record<string, string> }) => m.headers['event-id'];
const kafkaIds = (c: TopicCollector) => new Set(c.messages.map(header));

/** What the outbound wait settles on: the model's Spaces and reset boundaries up to `cutoff`, the stored outbound ids. */
export interface Settled {
  cutoff: number;
  ids: string[];
  expectedResets: Map<string, number[]>;
  sIds: { thresholds: Set<string>; resets: Set<string>; dead: Set<string> };
}

/** Lets the scheduler reach every boundary up to `cutoff` and the relay publish everything (or gives up). */
export async function awaitOutbound(run: TortureRun, { thresholds, resets, dlq, inbound }: Collected): Promise<Settled> {
  const { o, w, fig, t0, probe, log } = run;
  const convergeMs = o.convergeTimeoutMs ?? 600_000;
  const cutoff = Date.now() - 5000;
  const ids = w.model.spaceIds().concat(w.plans.map((p) => p.id)).filter((v, i, a) => a.indexOf(v) === i);
  const expectedResets = new Map<string, number[]>();
  for (const id of ids) expectedResets.set(id, w.model.resets(id, cutoff));
  fig.resetsExpected = [...expectedResets.values()].reduce((a, b) => a + b.length, 0);
  fig.resetsDuringRun = [...expectedResets.values()].reduce((a, b) => a + b.filter((x) => x >= t0).length, 0);
  const storeIds = async () => ({
    thresholds: await probe.idsOfType(['ThresholdCrossed']),
    resets: await probe.idsOfType(['PeriodReset']),
    dead: await probe.idsOfType(['DeadLetterRecorded']),
  });
  let sIds = await storeIds();
  const outDeadline = Date.now() + Math.min(convergeMs, 180_000);
  for (;;) {
    sIds = await storeIds();
    const pending =
      [...sIds.thresholds].filter((x) => !kafkaIds(thresholds).has(x)).length +
      [...sIds.resets].filter((x) => !kafkaIds(resets).has(x)).length +
      [...sIds.dead].filter((x) => !kafkaIds(dlq).has(x)).length;
    const resetsOk = coveredBoundaries(resets.messages, expectedResets, header).size >= fig.resetsExpected;
    const deadOk = sIds.dead.size >= inbound.poison.size;
    if ((pending === 0 && resetsOk && deadOk) || Date.now() > outDeadline) {
      log(`outbound: ${pending} stored events not yet on Kafka; reset boundaries on Kafka ${coveredBoundaries(resets.messages, expectedResets, header).size}/${fig.resetsExpected} (${sIds.resets.size} reset events stored); dead letters stored ${sIds.dead.size}, poison records ${[...inbound.poison.values()].flat().length}`);
      break;
    }
    await sleep(1000);
  }
  return { cutoff, ids, expectedResets, sIds };
}

/** 1. Nothing lost, nothing doubled: recorded inbound events per Space and type vs the model. */
export async function checkCounts(run: TortureRun, { ids }: Settled): Promise<void> {
  const { w, fig, probe, miss } = run;
  const byStream = await probe.countByStreamAndType();
  for (const id of ids) {
    const s = w.model.space(id);
    const got = byStream.get(`space-${id}`) ?? {};
    const usage = (got.GenerationRecorded ?? 0) + (got.BatchExportRecorded ?? 0);
    const subsGot = got.SubscriptionChanged ?? 0;
    for (const [exp, act, what] of [[s.usageCount, usage, 'usage'], [s.subscriptionCount, subsGot, 'subscription']] as [number, number, string][]) {
      if (act < exp) {
        fig.lost += exp - act;
        miss(`${id}: ${exp - act} ${what} events lost (${act}/${exp} recorded)`);
      } else if (act > exp) {
        fig.doubled += act - exp;
        miss(`${id}: ${act - exp} ${what} events doubled (${act}/${exp} recorded)`);
      }
    }
  }
}

/** 2. The usage screen of every Space equals the model (polled while the projection catches up). */
export async function checkUsageScreens(run: TortureRun, { ids }: Settled): Promise<void> {
  const { w, fig, sup, log, miss } = run;
  let viewMisses: string[] = [];
  for (let round = 0; round < 20; round++) {
    viewMisses = [];
    const checks = await mapLimit(ids, 12, async (id) => {
      for (let attempt = 0; ; attempt++) {
        try {
          const now = Date.now();
          const v = await fetchJson(`${(await sup.ready()).url}/v1/spaces/${encodeURIComponent(id)}/usage`);
          const e = w.model.view(id, Date.parse(v.asOf ?? iso(now)));
          const diffs: string[] = [];
          if (v.plan !== e.plan || v.cycle !== e.cycle) diffs.push(`plan ${v.plan}/${v.cycle} != ${e.plan}/${e.cycle}`);
          if (Date.parse(v.periodStart) !== e.periodStart) diffs.push(`periodStart ${v.periodStart} != ${iso(e.periodStart)}`);
          if ((v.periodEnd === null ? null : Date.parse(v.periodEnd)) !== e.periodEnd) diffs.push(`periodEnd ${v.periodEnd} != ${e.periodEnd === null ? null : iso(e.periodEnd)}`);
          for (const p of REF_POOLS) {
            if (v.pools[p].used !== e.used[p]) diffs.push(`${p} used ${v.pools[p].used} != ${e.used[p]}`);
            if (v.pools[p].limit !== e.limits[p]) diffs.push(`${p} limit ${v.pools[p].limit} != ${e.limits[p]}`);
          }
          return diffs.length ? `${id}: ${diffs.join('; ')}` : null;
        } catch (err) {
          if (attempt > 20) return `${id}: usage not readable: ${(err as Error).message}`;
          await sleep(500);
        }
      }
    });
    viewMisses = checks.filter((x): x is string => x !== null);
    if (viewMisses.length === 0) break;
    log(`usage screens: ${viewMisses.length} differ from the model (round ${round + 1}); e.g. ${viewMisses[0]}`);
    await sleep(1500);
  }
  fig.balanceMismatches = viewMisses.length;
  for (const m of viewMisses.slice(0, 20)) miss(`balance: ${m}`);
  if (viewMisses.length > 20) miss(`balance: ... and ${viewMisses.length - 20} more`);
}

/** 3. Dead letters: every poison record exactly once, with its reason; nothing valid dead-lettered. */
export async function checkDeadLetters(run: TortureRun, produced: OutMsg[], { dlq, inbound }: Collected): Promise<void> {
  const { fig, miss } = run;
  // Give the collectors a moment to see the last relayed messages.
  await sleep(1500);
  const poisonByToken = new Map<string, OutMsg>();
  for (const m of produced) if (m.poison) poisonByToken.set(m.poison.token, m);
  const dlqById = new Map<string, (typeof dlq.messages)[number]>();
  for (const m of dlq.messages) dlqById.set(header(m), m);
  fig.dlqCount = dlqById.size;
  const lettersBySource = new Map<string, string[]>();
  for (const [id, m] of dlqById) {
    const where = `${m.headers['dlq-source-topic']}/${m.headers['dlq-source-partition']}/${m.headers['dlq-source-offset']}`;
    lettersBySource.set(where, [...(lettersBySource.get(where) ?? []), id]);
  }
  const poisonRecords = new Set<string>();
  for (const [token, wheres] of inbound.poison) {
    const m = poisonByToken.get(token);
    for (const where of wheres) {
      poisonRecords.add(where);
      const letters = lettersBySource.get(where) ?? [];
      if (letters.length !== 1) {
        fig.dlqMisses++;
        miss(`dead letters: poison ${token} (${m?.poison?.kind}) at ${where} is in the DLQ ${letters.length} times`);
        continue;
      }
      const l = dlqById.get(letters[0])!;
      const errors = l.headers['dlq-errors'] ?? '';
      if (!l.headers['dlq-reason'] || (m?.poison && !errors.includes(m.poison.expect))) {
        fig.dlqMisses++;
        miss(`dead letters: poison ${token} (${m?.poison?.kind}) has reason "${l.headers['dlq-reason']}" / errors ${errors.slice(0, 200)}; expected a mention of ${m?.poison?.expect}`);
      }
      if (l.value.toString('utf8') !== m?.value) {
        fig.dlqMisses++;
        miss(`dead letters: poison ${token}: the dead letter does not carry the original bytes`);
      }
    }
  }
  for (const token of poisonByToken.keys())
    if (!inbound.poison.has(token)) {
      fig.dlqMisses++;
      miss(`poison ${token} was produced but never seen on its topic`);
    }
  for (const [where, letters] of lettersBySource)
    if (!poisonRecords.has(where)) {
      fig.dlqMisses++;
      miss(`dead letters: ${letters.length} letter(s) for ${where}, which is not a poison record: ${dlqById.get(letters[0])!.headers['dlq-reason']}`);
    }
  fig.poisonRecords = poisonRecords.size;
  fig.inboundRecords = inbound.records.size;
  fig.poisonShare = `${((100 * poisonRecords.size) / Math.max(1, inbound.records.size)).toFixed(2)} %`;
}

/**
 * 4. Resets: on Kafka exactly once per (Space, boundary) by id, and exactly the model's. One
 * PeriodReset covers every boundary from its firstBoundary to its periodStart (a catch-up).
 */
export function checkResets(run: TortureRun, { resets }: Collected, { cutoff, expectedResets, sIds }: Settled): void {
  const { fig, miss } = run;
  const resetsBy = coveredBoundaries(resets.messages, expectedResets, header);
  for (const [k, idsOf] of resetsBy)
    if (idsOf.size !== 1) {
      fig.resetMisses++;
      miss(`reset ${k} reached Kafka under ${idsOf.size} ids`);
    }
  for (const [id, bs] of expectedResets)
    for (const b of bs)
      if (!resetsBy.has(`${id}|${b}`)) {
        fig.resetMisses++;
        miss(`reset of ${id} at ${iso(b)} never reached Kafka`);
      }
  for (const k of resetsBy.keys()) {
    const [id, b] = [k.slice(0, k.lastIndexOf('|')), Number(k.slice(k.lastIndexOf('|') + 1))];
    if (b <= cutoff && !(expectedResets.get(id) ?? []).includes(b)) {
      fig.resetMisses++;
      miss(`reset of ${id} at ${iso(b)} is not a boundary of the model`);
    }
  }
  for (const x of sIds.resets)
    if (!kafkaIds(resets).has(x)) {
      fig.resetMisses++;
      miss(`stored reset ${x} never reached Kafka`);
    }
}

/**
 * 5. Thresholds: every stored one on Kafka; exactly one id per (Space, pool, period, threshold);
 * those the model says the open period reached are there. Returns the thresholds on Kafka by key.
 */
export function checkThresholds(run: TortureRun, { thresholds, resets, dlq }: Collected, { ids, sIds }: Settled): Map<string, Set<string>> {
  const { w, fig, miss } = run;
  const thrBy = new Map<string, Set<string>>();
  for (const m of thresholds.messages) {
    const body = JSON.parse(m.value.toString('utf8'));
    const k = `${body.data.spaceId}|${body.data.pool}|${Date.parse(body.data.periodStart)}|${body.data.threshold}`;
    if (!thrBy.has(k)) thrBy.set(k, new Set());
    thrBy.get(k)!.add(header(m));
  }
  fig.thresholdsOnKafka = thrBy.size;
  // Distinct records (a collector may read a record twice after the broker restart) minus distinct ids.
  fig.outboundRepeats = [thresholds, resets, dlq].reduce((a, c) => a + new Set(c.messages.map((m) => `${m.partition}/${m.offset}`)).size - kafkaIds(c).size, 0);
  fig.thresholdsInStore = sIds.thresholds.size;
  for (const [k, idsOf] of thrBy)
    if (idsOf.size !== 1) {
      fig.thresholdMisses++;
      fig.doubled++;
      miss(`threshold ${k} reached Kafka under ${idsOf.size} ids`);
    }
  for (const x of sIds.thresholds)
    if (!kafkaIds(thresholds).has(x)) {
      fig.thresholdMisses++;
      miss(`stored threshold ${x} never reached Kafka`);
    }
  const checkAt = Date.now();
  const catalogThresholds = w.model.catalog.thresholds;
  for (const id of ids) {
    const v = w.model.view(id, checkAt);
    for (const pool of REF_POOLS)
      for (const t of catalogThresholds)
        if (ReferenceModel.reaches(v.used[pool], v.limits[pool], t) && !thrBy.has(`${id}|${pool}|${v.periodStart}|${t}`)) {
          fig.thresholdMisses++;
          miss(`threshold ${t} % of ${pool} of ${id} in the period from ${iso(v.periodStart)} was reached (${v.used[pool]}/${v.limits[pool]}) but never notified`);
        }
  }
  return thrBy;
}

/** 6. Stop the service; the ops audit replays every stream and compares it with the read model. */
export async function checkAudit(run: TortureRun, thrBy: Map<string, Set<string>>): Promise<void> {
  const { w, fig, sups, snapshot, cliEnv, miss } = run;
  for (const x of sups) await x.stop();
  const audit = await runCli(snapshot.cli, ['audit', '--all', '--format', 'json'], cliEnv);
  fig.auditExit = audit.code;
  const reports = audit.stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as { spaceId: string; differences: unknown[]; periods: { start: string; used: Record<string, number>; usageEvents: number; thresholdsFired: string[]; resets: string[] }[] });
  fig.auditDifferences = reports.reduce((a, r) => a + r.differences.length, 0);
  if (audit.code !== 0 || fig.auditDifferences > 0) miss(`audit: exit ${audit.code}, ${fig.auditDifferences} differences: ${audit.stderr.slice(-500)} ${JSON.stringify(reports.find((r) => r.differences.length)?.differences ?? []).slice(0, 500)}`);
  // Per-period usage of the replay vs the model; thresholds in the store vs those on Kafka.
  const storeThr = new Set<string>();
  for (const r of reports) {
    const s = w.model.space(r.spaceId);
    const seen = new Set<number>();
    for (const p of r.periods) {
      const start = Date.parse(p.start);
      seen.add(start);
      const exp = s.used.get(start) ?? { ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 };
      const expEvents = s.usageEvents.get(start) ?? 0;
      if (REF_POOLS.some((pool) => (p.used[pool] ?? 0) !== exp[pool]) || p.usageEvents !== expEvents) {
        fig.periodMismatches++;
        miss(`period ${r.spaceId} ${p.start}: used ${JSON.stringify(p.used)} in ${p.usageEvents} events, model ${JSON.stringify(exp)} in ${expEvents}`);
      }
      if (p.resets.length > 1) {
        fig.resetMisses++;
        miss(`period ${r.spaceId} ${p.start} was opened by ${p.resets.length} resets`);
      }
      for (const f of p.thresholdsFired) {
        const [pool, t] = f.split('@');
        storeThr.add(`${r.spaceId}|${pool}|${start}|${t}`);
      }
    }
    for (const [start, n] of s.usageEvents)
      if (n > 0 && !seen.has(start)) {
        fig.periodMismatches++;
        miss(`period ${r.spaceId} ${iso(start)}: the model has ${n} usage events there, the audit no such period`);
      }
  }
  if (reports.length === 0) miss('audit printed no report');
  for (const k of storeThr)
    if (!thrBy.has(k)) {
      fig.thresholdMisses++;
      miss(`threshold ${k} fired in the store but is not on Kafka`);
    }
  for (const k of thrBy.keys())
    if (!storeThr.has(k)) {
      fig.thresholdMisses++;
      miss(`threshold ${k} on Kafka is not among the store's fired thresholds`);
    }
}
