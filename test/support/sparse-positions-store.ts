/** TEST ONLY: see libs/event-store/src/testing/sparse-positions-store.ts. */
export * from '@metering/event-store/testing/sparse-positions-store';
