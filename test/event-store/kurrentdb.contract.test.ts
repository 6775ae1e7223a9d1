/**
 * KurrentDB adapter against a real server: KURRENTDB_URL when set, else a testcontainers
 * KurrentDB where a Docker engine answers. With neither, the contract tests are registered as
 * SKIPPED (never as passed) and a loud warning says so.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { KurrentDBClient } from '@kurrent/kurrentdb-client';
import type { StartedTestContainer } from 'testcontainers';
import { KurrentDbEventStore, StoreUnavailableError, createEventStore } from '@metering/event-store';
import { describeEventStoreContract, newEvent } from '@metering/event-store/contract/event-store.contract';

const KURRENTDB_IMAGE = process.env.KURRENTDB_IMAGE ?? 'kurrentplatform/kurrentdb:25.0';

/** Asks testcontainers (in a child process, synchronously) whether a container runtime answers. */
function dockerAnswers(): boolean {
  const probe = spawnSync(
    process.execPath,
    ['-e', "require('testcontainers').getContainerRuntimeClient().then(() => process.exit(0), () => process.exit(3))"],
    { cwd: path.resolve(__dirname, '../..'), timeout: 30_000, stdio: 'ignore' },
  );
  return probe.status === 0;
}

const configuredUrl = process.env.KURRENTDB_URL;
const mode: 'url' | 'docker' | 'none' = configuredUrl ? 'url' : dockerAnswers() ? 'docker' : 'none';
if (mode === 'none') {
  console.warn('skipped: no KurrentDB (set KURRENTDB_URL or run where Docker exists)');
}

let container: StartedTestContainer | undefined;
let client: KurrentDBClient | undefined;

if (mode !== 'none') {
  beforeAll(async () => {
    let url = configuredUrl;
    if (mode === 'docker') {
      const { GenericContainer, Wait } = await import('testcontainers');
      container = await new GenericContainer(KURRENTDB_IMAGE)
        .withExposedPorts(2113)
        .withEnvironment({
          KURRENTDB_CLUSTER_SIZE: '1',
          KURRENTDB_INSECURE: 'true',
          KURRENTDB_RUN_PROJECTIONS: 'None',
          KURRENTDB_MEM_DB: 'true',
        })
        .withWaitStrategy(Wait.forHttp('/health/live', 2113).forStatusCodeMatching((c) => c >= 200 && c < 300))
        .withStartupTimeout(120_000)
        .start();
      url = `kurrentdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false`;
    }
    client = KurrentDBClient.connectionString(url as string);
  }, 180_000);
  afterAll(async () => {
    await client?.dispose();
    await container?.stop();
  });
}

describeEventStoreContract(
  'kurrentdb',
  async (o) => {
    const store = new KurrentDbEventStore({ client: client as KurrentDBClient, maxAppendBytes: o?.maxAppendBytes });
    return { store, cleanup: () => store.close() };
  },
  { skip: mode === 'none', uniqueIdsAcrossStreams: false, appendMany: false, readEventsById: false, groupCommit: false },
);

// Runs everywhere: no server is needed to check that an unreachable one is reported as such.
describe('KurrentDbEventStore without a reachable server', () => {
  test('append and reads fail with StoreUnavailableError', async () => {
    const store = await createEventStore({ kind: 'kurrentdb', url: 'kurrentdb://127.0.0.1:1?tls=false' });
    try {
      expect(store).toBeInstanceOf(KurrentDbEventStore);
      await expect(store.append('space-1', [newEvent()], 'no_stream')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.readStream('space-1')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.readAll({ streamPrefix: 'space-' })).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await store.close();
    }
  }, 30_000);
});
