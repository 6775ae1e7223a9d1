/**
 * The fault run's options, figures and result, how the figures are printed, and how PeriodReset
 * messages are matched with the model's boundaries (see torture.ts).
 */
type KafkaBroker = Awaited<ReturnType<(typeof import('../kafka/broker'))['startBroker']>>;

export interface TortureOptions {
  store: 'sqlite' | 'postgres';
  /** Unique valid events (subscriptions, upgrades, usage). */
  events: number;
  spaces: number;
  /** SIGKILLs of the consumer process. */
  kills: number;
  seed?: number;
  /** Pause between kills (ms, uniform), counted from the restarted process being ready. */
  killGapMs?: [number, number];
  /** Poison messages per unique valid event. Default 0.02 (each valid event is delivered ~1.7 times: > 1 % of the records). */
  poisonRate?: number;
  /** How long the store is unavailable. Default 8 s. */
  outageMs?: number;
  /** Boundaries of anchors that reset during the run fall this long after the start. */
  resetWindowMs?: [number, number];
  /** Use this broker (it is restarted once); default: start a fresh one and stop it at the end. */
  broker?: KafkaBroker;
  brokerHardRestart?: boolean;
  pgUrl?: string;
  log?: (line: string) => void;
  /** PostgreSQL only: service processes in one consumer group (each killed at random). Default 1. */
  consumers?: number;
  /** Check of the checks: add a usage event to the model that is never produced (the run must fail). */
  sabotage?: boolean;
  /** Give up waiting for the service to catch up after this long. Default 10 min. */
  convergeTimeoutMs?: number;
}

export interface TortureFigures {
  store: string;
  consumers: number;
  seed: number;
  spaces: number;
  uniqueEvents: number;
  subscriptions: number;
  upgrades: number;
  usageEvents: number;
  lateEvents: number;
  deliveries: number;
  inboundRecords: number;
  poisonRecords: number;
  poisonShare: string;
  kills: number;
  unexpectedExits: number;
  brokerRestarts: number;
  storeOutages: number;
  storeOutageMs: number;
  resetsExpected: number;
  resetsDuringRun: number;
  thresholdsInStore: number;
  thresholdsOnKafka: number;
  /** Outbound records (thresholds, resets, dead letters) published more than once under one id: the relay is at-least-once. */
  outboundRepeats: number;
  lost: number;
  doubled: number;
  balanceMismatches: number;
  periodMismatches: number;
  dlqCount: number;
  dlqMisses: number;
  thresholdMisses: number;
  resetMisses: number;
  auditDifferences: number;
  auditExit: number | null;
  durationS: number;
}

export interface TortureResult {
  figures: TortureFigures;
  misses: string[];
}

/** The figures before anything has happened. */
export function emptyFigures(store: string, seed: number, spaces: number): TortureFigures {
  return {
    store, consumers: 1, seed, spaces, uniqueEvents: 0, subscriptions: 0, upgrades: 0, usageEvents: 0, lateEvents: 0, deliveries: 0, inboundRecords: 0, poisonRecords: 0, poisonShare: '',
    kills: 0, unexpectedExits: 0, brokerRestarts: 0, storeOutages: 0, storeOutageMs: 0, resetsExpected: 0, resetsDuringRun: 0, thresholdsInStore: 0, thresholdsOnKafka: 0, outboundRepeats: 0,
    lost: 0, doubled: 0, balanceMismatches: 0, periodMismatches: 0, dlqCount: 0, dlqMisses: 0, thresholdMisses: 0, resetMisses: 0, auditDifferences: 0, auditExit: null, durationS: 0,
  };
}

export function formatFigures(f: TortureFigures): string {
  return [
    `store ${f.store} (${f.consumers} consumer process${f.consumers > 1 ? 'es in one group' : ''}), seed ${f.seed}, ${f.spaces} Spaces, ${f.durationS} s`,
    `events: ${f.uniqueEvents} unique valid (${f.subscriptions} subscriptions, ${f.upgrades} upgrades, ${f.usageEvents} usage of which ${f.lateEvents} late), ${f.deliveries} valid deliveries, ${f.inboundRecords} inbound records, ${f.poisonRecords} poison (${f.poisonShare})`,
    `faults: ${f.kills} SIGKILLs, ${f.brokerRestarts} broker restart, ${f.storeOutages} store outage (${f.storeOutageMs} ms), ${f.unexpectedExits} unexpected service exits`,
    `resets: ${f.resetsExpected} expected (${f.resetsDuringRun} fell due during the run); thresholds: ${f.thresholdsInStore} stored, ${f.thresholdsOnKafka} distinct on Kafka; ${f.outboundRepeats} outbound messages repeated (deduplicated by id)`,
    `lost = ${f.lost}, doubled = ${f.doubled}, balance mismatches = ${f.balanceMismatches}, period mismatches = ${f.periodMismatches}`,
    `DLQ count = ${f.dlqCount} (misses ${f.dlqMisses}), threshold misses = ${f.thresholdMisses}, reset misses = ${f.resetMisses}, audit differences = ${f.auditDifferences} (exit ${f.auditExit})`,
  ].join('\n');
}

/**
 * (Space|boundary) -> ids of the PeriodReset messages that cover it. A message covers the model's
 * boundaries from its `firstBoundary` to its `periodStart` (both included); it must cover exactly
 * `boundariesCovered` of them, or it covers a boundary the model does not have (reported as such).
 */
export function coveredBoundaries(
  messages: { value: Buffer; headers: Record<string, string> }[],
  expected: Map<string, number[]>,
  header: (m: { headers: Record<string, string> }) => string,
): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (k: string, id: string) => {
    if (!out.has(k)) out.set(k, new Set());
    out.get(k)!.add(id);
  };
  for (const m of messages) {
    const body = JSON.parse(m.value.toString('utf8'));
    const d = body.data as { spaceId: string; periodStart: string; firstBoundary?: string; boundariesCovered?: number };
    const last = Date.parse(d.periodStart);
    const first = d.firstBoundary ? Date.parse(d.firstBoundary) : last;
    const inModel = (expected.get(d.spaceId) ?? []).filter((b) => b >= first && b <= last);
    if (inModel.length !== (d.boundariesCovered ?? 1) || !inModel.includes(last)) add(`${d.spaceId}|${last}`, header(m));
    for (const b of inModel) add(`${d.spaceId}|${b}`, header(m));
  }
  return out;
}
