/**
 * Part of the EventStore contract (see event-store.contract.ts): `readAllJson`, the global log
 * with data and metadata left as JSON text (what a rebuild reads). Every adapter offers it; it
 * must return what `readAll` returns for the same options, event for event. Test files only.
 */
import { EventStore, ReadAllOptions, StoredEvent, StoredEventJson } from '../port';
import { ContractContext, newEvent } from './contract-support';

/** A StoredEventJson parsed back: what readAll gives, without recordedAt. */
const parsed = (e: StoredEventJson) => ({
  id: e.id,
  streamName: e.streamName,
  type: e.type,
  data: JSON.parse(e.dataJson) as unknown,
  metadata: e.metadataJson === null ? {} : (JSON.parse(e.metadataJson) as unknown),
  revision: e.revision,
  globalPosition: e.globalPosition,
});
const withoutRecordedAt = ({ recordedAt: _r, ...rest }: StoredEvent) => rest;

export function describeReadAllJson(c: ContractContext): void {
  describe('the global log as JSON text (readAllJson)', () => {
    let store: EventStore;
    let p: string;
    beforeEach(() => {
      ({ store, p } = c.current());
    });

    const same = async (options: ReadAllOptions) => {
      const json = await store.readAllJson!(options);
      const full = await store.readAll(options);
      expect(json.map(parsed)).toEqual(full.map(withoutRecordedAt));
      for (const e of json) {
        expect(typeof e.dataJson).toBe('string');
        expect(typeof e.revision).toBe('number');
        expect(typeof e.globalPosition).toBe('bigint');
      }
      return json;
    };

    test('returns what readAll returns for the same options (order, filters, paging), data and metadata as JSON text', async () => {
      expect(typeof store.readAllJson).toBe('function');
      const rich = {
        spaceId: 'spc_ü',
        nested: { a: [1, 2.5, -3, { deep: [null, true, false, ''] }], empty: {}, list: [] },
        text: 'Grüße 你好 🙂 quote " backslash \\ newline \n tab \t \u2028',
        numbers: { zero: 0, negative: -42, fraction: 0.1, big: 9007199254740991, exp: 1.5e-7 },
      };
      await store.append(`${p}space-1`, [newEvent('A', rich, { schema: 2, by: 'ü' }), newEvent('B', { n: 1 })], 'no_stream');
      await store.append(`${p}other`, [newEvent('A', { n: 2 }, { k: [1, { x: null }] })], 'no_stream');
      await store.append(`${p}space-2`, [newEvent('B', {}), newEvent('A', { n: 3 }, {})], 'no_stream');
      await store.append(`${p}space-1`, [newEvent('C', { n: 4 })], 1);

      const all = await same({ streamPrefix: p });
      expect(all.map((e) => `${e.streamName.slice(p.length)}/${e.type}/${e.revision}`)).toEqual([
        'space-1/A/0', 'space-1/B/1', 'other/A/0', 'space-2/B/0', 'space-2/A/1', 'space-1/C/2',
      ]);
      // Empty metadata is null; any other is its JSON text.
      expect(all.map((e) => e.metadataJson === null)).toEqual([false, true, false, true, true, true]);
      expect(JSON.parse(all[0].dataJson)).toEqual(rich);

      await same({ streamPrefix: `${p}space-` });
      await same({ streamPrefix: p, types: ['A', 'C'] });
      await same({ streamPrefix: `${p}space-`, types: ['B'], maxCount: 1 });
      await same({ streamPrefix: p, after: all[2].globalPosition });
      // Paging with `after` the last position of the page before returns each event once.
      const seen: StoredEventJson[] = [];
      let after: bigint | undefined;
      for (let guard = 0; guard < 20; guard++) {
        const page = await same({ streamPrefix: p, after, maxCount: 4 });
        if (page.length === 0) break;
        seen.push(...page);
        after = page[page.length - 1].globalPosition;
      }
      expect(seen.map((e) => e.id)).toEqual(all.map((e) => e.id));
      expect(await store.readAllJson!({ streamPrefix: p, after: all[all.length - 1].globalPosition })).toEqual([]);
      await expect(store.readAllJson!({ types: [] })).rejects.toThrow(TypeError);
    });
  });
}
