/**
 * The one workload generator (issue 17): the single source of inbound events for the tests, the
 * benchmarks and the fault run.
 *
 *  - random.ts: the seeded PRNG and the draws every scenario makes with it;
 *  - catalog.ts: the (plan, cycle) pairs, features and platforms of the catalog the service starts with;
 *  - events.ts: builders of valid inbound events of each kind, enterprise limits, the usage mix;
 *  - life.ts + run.ts: the simulated-clock life (~6 months over many Spaces) and its driver into an IngestService;
 *  - faults.ts + poison.ts: the fault run's wall-clock phases, with redeliveries and poison messages;
 *  - flat.ts: the benchmarks' flat stream.
 */
export * from './random';
export * from './catalog';
export * from './events';
export * from './life';
export * from './run';
export * from './faults';
export * from './poison';
export * from './flat';
