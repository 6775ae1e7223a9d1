/**
 * The contract every EventStore adapter must pass. Used from test files only (it registers jest
 * tests); never import it from production code.
 *
 * Each test uses streams under its own random prefix, so the suite also runs against a shared
 * store (a KurrentDB server, one PostgreSQL schema per file) and never depends on other tests'
 * events. The factory is called once per test; `cleanup` runs after it.
 */
import { EventStore } from '../port';
import { describeAppendAndRead, describeIdempotency } from './contract-append';
import { describeAppendBudget, describeAppendMany, describeGroupCommit } from './contract-group-commit';
import { describeColdStarts, describeDataAndMetadata, describeEventsById, describeGlobalLog, describeOpaquePositions, describeSnapshots } from './contract-reads';
import { describeReadAllJson } from './contract-read-json';
import { describeSubscribe } from './contract-subscribe';
import { ContractContext, ContractOptions, ContractStore, ContractStoreOptions, uniquePrefix } from './contract-support';

export type { ContractOptions, ContractStore, ContractStoreOptions } from './contract-support';
export { newEvent } from './contract-support';

export function describeEventStoreContract(
  name: string,
  factory: (storeOptions?: ContractStoreOptions) => Promise<ContractStore>,
  options: ContractOptions = {},
): void {
  const uniqueIdsAcrossStreams = options.uniqueIdsAcrossStreams ?? true;
  const offersAppendMany = options.appendMany ?? true;
  const offersReadById = options.readEventsById ?? true;
  const groupCommit = options.groupCommit ?? true;
  const describeFn = options.skip ? describe.skip : describe;

  describeFn(`EventStore contract: ${name}`, () => {
    let ctx: ContractStore | undefined;
    let store: EventStore;
    let p: string;

    beforeEach(async () => {
      ctx = await factory();
      store = ctx.store;
      p = uniquePrefix();
    });
    afterEach(async () => {
      await ctx?.cleanup();
      ctx = undefined;
    });

    const c: ContractContext = {
      current: () => ({ store, p }),
      factory,
      uniqueIdsAcrossStreams,
      offersAppendMany,
      offersReadById,
      groupCommit,
    };
    // The feature parts, in the order the suite has always run them.
    describeAppendAndRead(c);
    describeIdempotency(c);
    describeGroupCommit(c);
    describeGlobalLog(c);
    describeReadAllJson(c);
    describeSnapshots(c);
    describeColdStarts(c);
    describeEventsById(c);
    describeDataAndMetadata(c);
    describeSubscribe(c);
    describeOpaquePositions(c);
    describeAppendBudget(c);
    describeAppendMany(c);
  });
}
