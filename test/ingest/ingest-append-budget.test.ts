/**
 * A batch for one Space whose events exceed the store's append budget (KurrentDB's MaxAppendSize)
 * is decided in consecutive appends instead of failing forever; one command alone over it is
 * rejected by name, nothing written. Real SQLite store with a small budget.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type InboundEvent, spaceStreamName } from '@metering/domain';
import { SqliteEventStore, newEventBytes } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { type Clock, systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';

const clock: Clock = { now: () => Date.parse('2026-11-20T12:00:00Z') };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-budget-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function open(maxAppendBytes: number) {
  const file = path.join(dir, `${randomUUID()}.db`);
  // The catalog is recorded first without a budget (its version event is ~2.4 KB).
  const setup = new SqliteEventStore(file);
  await new CatalogService(setup, systemIds, null).init();
  await setup.close();
  const store = new SqliteEventStore(file, { maxAppendBytes });
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  return { store, ingest: new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds) };
}

const use = (spaceId: string, i: number): InboundEvent => ({
  type: 'generation-performed', eventId: `g-${i}`, spaceId, userId: 'u', feature: 'ai_shadows', medium: 'image', generations: 1, occurredAt: '2026-11-20T10:00:00Z',
});

test('one Space, 40 events over a 4 KB budget: all accepted in several appends, each once', async () => {
  const { store, ingest } = await open(4096);
  try {
    const events = Array.from({ length: 40 }, (_, i) => use('acme', i));
    const out = await ingest.ingest(events);
    expect(out.map((o) => o.outcome)).toEqual(events.map(() => 'accepted'));
    const stored = await store.readStream(spaceStreamName('acme'));
    expect(stored.length).toBeGreaterThanOrEqual(40);
    // One append could not have held them: the budget forced the split.
    const bytes = stored.reduce((n, e) => n + newEventBytes({ id: e.id, type: e.type, data: e.data, metadata: e.metadata }), 0);
    expect(bytes).toBeGreaterThan(4096);
    const again = await ingest.ingest(events);
    expect(again.map((o) => o.outcome)).toEqual(events.map(() => 'duplicate'));
  } finally {
    await store.close();
  }
});

test('one command alone over the budget is rejected with append_too_large, nothing written', async () => {
  const { store, ingest } = await open(300);
  try {
    const [o] = await ingest.ingest([use('tiny', 1)]);
    expect(o).toMatchObject({ outcome: 'rejected', errors: [{ rule: 'append_too_large' }] });
    expect(await store.streamRevision(spaceStreamName('tiny'))).toBe(-1);
  } finally {
    await store.close();
  }
});
