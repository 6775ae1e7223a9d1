import { SPACE_STREAM_PREFIX } from '@metering/domain';
import type { EventStore, StoredEvent } from '@metering/event-store';
import type { BalanceProjection } from './balance-read-model';
import type { PageEvent } from './apply-events';
import { withLegacyMoves, withLegacyMovesJson } from './legacy-moves';
import type { ProjectionFollower } from './breakdown/breakdown'; // issue-15

export interface RebuildProgress {
  applied: number;
  position: bigint;
  head: bigint;
}

/**
 * Clears the balance read model and projects every Space stream again, page by page (each page
 * one read-model transaction, checkpoint included). Run it with the service stopped, or the live
 * projector keeps writing concurrently. Returns the number of events applied.
 */
export async function rebuildBalances(
  store: EventStore,
  readModel: BalanceProjection,
  options: { batch?: number; onProgress?: (p: RebuildProgress) => void; /** issue-15: rebuilt with the balances (the usage breakdown) */ followers?: readonly ProjectionFollower[] } = {},
): Promise<number> {
  const batch = options.batch ?? 1000;
  const head = await store.headPosition();
  await readModel.clear();
  for (const f of options.followers ?? []) await f.clear(); // issue-15
  let position = 0n;
  let applied = 0;
  const followers = options.followers ?? [];
  const progress = (page: readonly { globalPosition: bigint }[]) => {
    position = page[page.length - 1].globalPosition;
    applied += page.length;
    options.onProgress?.({ applied, position, head });
  };
  const read = { maxCount: batch, streamPrefix: SPACE_STREAM_PREFIX };
  async function* pages(): AsyncGenerator<StoredEvent[]> {
    for (;;) {
      const page = await store.readAll({ ...read, after: position });
      if (page.length === 0) return;
      const upcast = await withLegacyMoves(store, page);
      for (const f of followers) await f.apply(upcast); // issue-15
      yield upcast;
      progress(page);
    }
  }
  // Balances alone, from a store that reads JSON text: events parsed one by one as they are folded,
  // so a page holds strings and what is parsed from it dies young (the followers take StoredEvents).
  const readJson = store.readAllJson?.bind(store);
  async function* jsonPages(readPage: NonNullable<typeof readJson>): AsyncGenerator<PageEvent[]> {
    for (;;) {
      const page = await readPage({ ...read, after: position });
      if (page.length === 0) return;
      yield await withLegacyMovesJson(store, page);
      progress(page);
    }
  }
  if (readModel.applyPages) {
    await readModel.applyPages(followers.length === 0 && readJson ? jsonPages(readJson) : pages());
  } else {
    for await (const page of pages()) await readModel.apply(page);
  }
  return applied;
}
