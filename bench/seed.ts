/**
 * Fills a store with real decided events: the workload's flat stream (test/support/workload/flat.ts) goes through the service's own
 * IngestService (decide, then append with exact revisions), in chunks, with the system clock.
 */
import type { EventStore } from '@metering/event-store';
import { CatalogService } from '../apps/metering/src/catalog/catalog.service';
import { systemClock, systemIds } from '../apps/metering/src/infra/clock';
import { IngestService } from '../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../apps/metering/src/ingest/space-repository';
import type { InboundEvent } from '@metering/domain';
import { flatStream } from '../test/support/workload/flat';

export async function seedStore(store: EventStore, events: number, spaces: number, seed = 7): Promise<{ accepted: number; rejected: number }> {
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  // A small cache: seeding touches each Space a few times, and 100,000 states would only cost memory.
  const ingest = new IngestService(store, new SpaceRepository(store, { maxCached: spaces + 1_000 }), catalog, systemClock, systemIds);
  let chunk: InboundEvent[] = [];
  let accepted = 0;
  let rejected = 0;
  const flush = async () => {
    const outcomes = await ingest.ingest(chunk);
    for (const o of outcomes) {
      if (o.outcome === 'accepted') accepted++;
      else if (o.outcome === 'rejected') rejected++;
    }
    chunk = [];
  };
  for (const e of flatStream(events, spaces, seed)) {
    chunk.push(e);
    if (chunk.length >= 2_000) await flush();
  }
  if (chunk.length) await flush();
  return { accepted, rejected };
}
