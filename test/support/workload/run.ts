/**
 * The driver of the simulated-clock life (life.ts): delivers it to an IngestService in time order,
 * one `ingest` call per time step (the clock set to the step's last arrival first, so nothing is in
 * the future), and at a fixed cadence runs the reset scheduler's command `ResetDuePeriods` for every
 * Space seen so far.
 */
import type { Clock } from '../../../apps/metering/src/infra/clock';
import type { IngestService, Outcome } from '../../../apps/metering/src/ingest/ingest.service';
import type { Workload, WorkloadStep } from './life';

/** The test clock: only ever moves forward. */
export class WorkloadClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  advanceTo(t: number): void {
    if (t > this.t) this.t = t;
  }
}

export interface RunOptions {
  ingest: IngestService;
  clock: WorkloadClock;
  /** Spaces whose ResetDuePeriods run at once. Default 8. */
  resetConcurrency?: number;
  /** Called after every step (e.g. to look at the live projection). */
  afterStep?: (step: WorkloadStep, index: number) => Promise<void> | void;
}

export interface RunResult {
  accepted: number;
  duplicates: number;
  rejected: { eventId?: string; spaceId?: string; errors: unknown }[];
  ingestCalls: number;
  /** Appends made (one per Space per ingest call or reset that recorded something). */
  appends: number;
  resetPasses: number;
  /** PeriodReset events appended during the run. */
  resetsAppended: number;
  /** Accepted outcomes that recorded a ThresholdCrossed. */
  thresholdsCrossed: number;
  /** Highest global position an append of this run reported (wait for it in a projection). */
  lastPosition: bigint;
  ms: number;
}

/** Delivers the workload through `ingest` in time order, running resets at their cadence. */
export async function runWorkload(w: Workload, opts: RunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const result: RunResult = { accepted: 0, duplicates: 0, rejected: [], ingestCalls: 0, appends: 0, resetPasses: 0, resetsAppended: 0, thresholdsCrossed: 0, lastPosition: 0n, ms: 0 };
  const known = new Set<string>();
  const count = (o: Outcome) => {
    if (o.outcome === 'accepted') {
      result.accepted++;
      if (BigInt(o.position) > result.lastPosition) result.lastPosition = BigInt(o.position);
      result.thresholdsCrossed += o.recorded.filter((t) => t === 'ThresholdCrossed').length;
    } else if (o.outcome === 'duplicate') result.duplicates++;
    else result.rejected.push({ eventId: o.eventId, spaceId: o.spaceId, errors: o.errors });
  };
  for (let i = 0; i < w.steps.length; i++) {
    const step = w.steps[i];
    opts.clock.advanceTo(step.at);
    if (step.kind === 'ingest') {
      for (const d of step.deliveries) known.add(d.event.spaceId);
      const outcomes = await opts.ingest.ingest(step.deliveries.map((d) => d.event));
      result.ingestCalls++;
      result.appends += new Set(outcomes.filter((o) => o.outcome === 'accepted').map((o) => o.spaceId)).size;
      outcomes.forEach(count);
    } else {
      result.resetPasses++;
      const ids = [...known];
      const width = opts.resetConcurrency ?? 8;
      await Promise.all(
        Array.from({ length: width }, async (_, k) => {
          for (let j = k; j < ids.length; j += width) {
            const [o] = await opts.ingest.executeForSpace(ids[j], [{ type: 'ResetDuePeriods', spaceId: ids[j] }]);
            if (o.outcome === 'accepted' && o.recorded.length) {
              result.appends++;
              if (BigInt(o.position) > result.lastPosition) result.lastPosition = BigInt(o.position);
              result.resetsAppended += o.recorded.filter((t) => t === 'PeriodReset').length;
            }
          }
        }),
      );
    }
    await opts.afterStep?.(step, i);
    // Let timers and I/O run between steps, as between two consumer polls: with a synchronous store
    // (SQLite) the appends alone never leave the microtask queue, and a live projector would starve.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  result.ms = Date.now() - t0;
  return result;
}
