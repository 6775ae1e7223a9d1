/**
 * Prometheus metrics, on a registry per app instance (several apps may live in one process, e.g.
 * in tests). Counters are bumped by callbacks (IngestCounters of KafkaIngest, the relay, the HTTP
 * ingest); lags are computed when /metrics is scraped, never on the request path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Something that answers a lag when scraped; null when it does not apply (role off, Kafka off). */
export type LagSource = () => Promise<number | null>;
export type PartitionLagSource = () => Promise<{ topic: string; partition: number; lag: number }[] | null>;

export class Metrics {
  readonly registry = new Registry();
  readonly consumed: Counter<'type'>;
  readonly appended: Counter<'type' | 'source'>;
  readonly rejected: Counter<'type' | 'source'>;
  readonly duplicates: Counter<'source'>;
  readonly deadLetters: Counter<'topic'>;
  readonly subscriptionsFirst: Counter<'outcome'>;
  readonly relayed: Counter<'type'>;
  readonly appendLatency: Histogram<'op' | 'outcome'>;
  readonly coldLoadEvents: Histogram<'snapshot'>;
  readonly coldLoadSeconds: Histogram<'snapshot'>;
  readonly olderUsesReadEvents: Histogram<string>;
  readonly snapshotErrors: Counter;
  private projectionLag: LagSource = async () => null;
  /** issue-14: the entitlement view's figures (null: no view in this process). */
  private entitlementView: () => { spaces: number; hits: number; misses: number; evictions: number; stalenessSeconds: number } | null = () => null;
  private relayLag: LagSource = async () => null;
  private consumerLag: PartitionLagSource = async () => null;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'metering_' });
    this.consumed = new Counter({
      name: 'metering_events_consumed_total',
      help: 'Inbound messages consumed from Kafka, by inbound event type (topic not inbound: "unknown")',
      labelNames: ['type'],
      registers,
    });
    this.appended = new Counter({
      name: 'metering_events_appended_total',
      help: 'Events appended to Space streams, by stored event type and source (kafka, http, scheduler)',
      labelNames: ['type', 'source'],
      registers,
    });
    this.rejected = new Counter({
      name: 'metering_events_rejected_total',
      help: 'Inbound events rejected (dead-lettered when from Kafka), by inbound event type and source (kafka, http)',
      labelNames: ['type', 'source'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'metering_events_duplicate_total',
      help: 'Inbound events recognised by eventId as already recorded (redeliveries)',
      labelNames: ['source'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'metering_dead_letters_total',
      help: 'Dead letters recorded in the store since start (relayed to the dead-letter topic), by source topic',
      labelNames: ['topic'],
      registers,
    });
    this.subscriptionsFirst = new Counter({
      name: 'metering_kafka_subscriptions_first_total',
      help: 'Usage batches let through by the subscriptions-first rule, by why: caught_up (no lag on the subscription topic as of the batch), expired (held back KAFKA_SUBSCRIPTIONS_FIRST_MS)',
      labelNames: ['outcome'],
      registers,
    });
    this.relayed = new Counter({
      name: 'metering_relay_published_total',
      help: 'Events published to Kafka by the outbound relay, by stored event type',
      labelNames: ['type'],
      registers,
    });
    this.appendLatency = new Histogram({
      name: 'metering_event_store_append_duration_seconds',
      help: 'Latency of event-store appends (append, appendMany), by outcome (ok, conflict, error)',
      labelNames: ['op', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.coldLoadEvents = new Histogram({
      name: 'metering_space_cold_load_events',
      help: 'Events read to load a Space not in memory (after its snapshot, when one was used: snapshot="yes")',
      labelNames: ['snapshot'],
      buckets: [0, 10, 100, 1000, 5000, 20_000, 100_000, 1_000_000],
      registers,
    });
    this.coldLoadSeconds = new Histogram({
      name: 'metering_space_cold_load_seconds',
      help: 'Time to load a Space not in memory (snapshot read and events folded)',
      labelNames: ['snapshot'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 20],
      registers,
    });
    this.olderUsesReadEvents = new Histogram({
      name: 'metering_space_older_uses_read_events',
      help: 'Events read back from a Space stream to decide a subscription change over uses dropped from the state tail (only when they can change its moves)',
      buckets: [0, 10, 100, 1000, 10_000, 100_000, 1_000_000],
      registers,
    });
    this.snapshotErrors = new Counter({
      name: 'metering_snapshot_write_errors_total',
      help: 'Snapshot writes that failed (snapshots are a cache: nothing is lost, loads read more events)',
      registers,
    });
    const self = this;
    new Gauge({
      name: 'metering_projection_lag_events',
      help: 'Space events stored after the balance projection checkpoint (counted, not position arithmetic), capped at 10000',
      registers,
      async collect() {
        const v = await self.projectionLag().catch(() => null);
        if (v !== null) this.set(v);
      },
    });
    new Gauge({
      name: 'metering_entitlement_view_spaces',
      help: 'Spaces held by the in-memory entitlement view (at most ENTITLEMENT_VIEW_MAX_SPACES)',
      registers,
      collect() {
        const v = self.entitlementView();
        if (v) this.set(v.spaces);
      },
    });
    new Gauge({
      name: 'metering_entitlement_view_staleness_seconds',
      help: 'Now minus the asOf of entitlement answers: how far the view may trail the store (ENTITLEMENT_VIEW_POLL_MS plus one read while the store answers)',
      registers,
      collect() {
        const v = self.entitlementView();
        if (v) this.set(v.stalenessSeconds);
      },
    });
    new Counter({
      name: 'metering_entitlement_view_lookups_total',
      help: 'Entitlement checks answered from the view (hit) or after loading the Space from the read model and its stream (miss); evicted: Spaces dropped by the size bound',
      labelNames: ['result'],
      registers,
      collect() {
        const v = self.entitlementView();
        if (!v) return;
        this.reset();
        this.inc({ result: 'hit' }, v.hits);
        this.inc({ result: 'miss' }, v.misses);
        this.inc({ result: 'evicted' }, v.evictions);
      },
    });
    new Gauge({
      name: 'metering_relay_lag_events',
      help: 'Events waiting to be published by the outbound relay (threshold, reset, dead letter), capped at 10000',
      registers,
      async collect() {
        const v = await self.relayLag().catch(() => null);
        if (v !== null) this.set(v);
      },
    });
    new Gauge({
      name: 'metering_consumer_lag_messages',
      help: 'Kafka consumer-group lag (high watermark minus committed offset), by inbound topic and partition',
      labelNames: ['topic', 'partition'],
      registers,
      async collect() {
        const v = await self.consumerLag().catch(() => null);
        this.reset();
        if (v) for (const p of v) this.set({ topic: p.topic, partition: String(p.partition) }, p.lag);
      },
    });
  }

  setProjectionLag(source: LagSource): void {
    this.projectionLag = source;
  }

  setEntitlementView(source: Metrics['entitlementView']): void {
    this.entitlementView = source;
  }

  setRelayLag(source: LagSource): void {
    this.relayLag = source;
  }

  setConsumerLag(source: PartitionLagSource): void {
    this.consumerLag = source;
  }
}


/** Caches an async probe for `ttlMs` and bounds it by `timeoutMs` (a slow broker never hangs a scrape). */
export function cachedProbe<T>(probe: () => Promise<T>, ttlMs: number, timeoutMs: number): () => Promise<T | null> {
  let last: { at: number; value: T | null } | null = null;
  let running: Promise<T | null> | null = null;
  return async () => {
    if (last && Date.now() - last.at < ttlMs) return last.value;
    if (!running) {
      let timer: NodeJS.Timeout | undefined;
      running = Promise.race([
        probe().catch(() => null),
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), timeoutMs);
          timer.unref();
        }),
      ]).then((value) => {
        clearTimeout(timer);
        last = { at: Date.now(), value };
        running = null;
        return value;
      });
    }
    return running;
  };
}
