/**
 * Dead letter -> catalog fix -> re-drive, with the BUILT service and the BUILT CLI on a real Kafka
 * broker. Runs only when KAFKA_BROKERS is set (the kafka jest project's global setup sets it);
 * skipped in the integration project.
 *
 * The procedure is publish -> wait until the version is in force -> re-drive, with the service
 * running throughout: it re-reads the catalog stream, so no restart is needed.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultCatalogJson } from '@metering/domain';
import { api, startApp, tempDir, type RunningApp } from '../support/app-process';
import { kafkaEnv, testMessaging, testTopics, until } from '../support/kafka-app';

const CLI = path.join(path.resolve(__dirname, '..', '..'), 'dist', 'apps', 'metering', 'src', 'cli.js');
const maybe = process.env.KAFKA_BROKERS ? describe : describe.skip;

maybe('dlq redrive after a catalog publish', () => {
  const topics = testTopics();
  // Computed lazily: describe.skip still runs this body, and kafkaEnv needs KAFKA_BROKERS.
  let env: Record<string, string> = {};
  let dataDir = '';
  let app: RunningApp | null = null;

  beforeAll(() => {
    env = kafkaEnv(topics, `cli-dlq-${randomUUID().slice(0, 8)}`, 1);
    dataDir = tempDir('metering-cli-dlq-');
  });

  const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env, DATA_DIR: dataDir, LOG_LEVEL: 'silent' }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
      );
    });

  afterAll(async () => {
    await app?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('an unknown feature is dead-lettered, re-driven once after the catalog adds it, and counted', async () => {
    app = await startApp(env, dataDir);
    const spaceId = `dlq-${randomUUID().slice(0, 8)}`;
    const producer = testMessaging().producer();
    const message = { eventId: `e-${randomUUID()}`, spaceId, userId: 'u', feature: 'ai_sketch', medium: 'image', generations: 1, occurredAt: new Date().toISOString() };
    await producer.send(topics.generationPerformed, [{ key: spaceId, value: JSON.stringify(message) }]);
    await producer.close();

    const pending = await until(
      async () => JSON.parse((await cli(['dlq', 'list', '--format', 'json'])).stdout || '[]') as { deadLetterId: string; reason: string; redriven: unknown; key: string }[],
      (l) => l.length === 1,
      'the dead letter',
    );
    expect(pending[0]).toMatchObject({ key: spaceId, redriven: null });
    expect(pending[0].reason).toContain('feature');
    const id = pending[0].deadLetterId;
    const shown = await cli(['dlq', 'show', id]);
    expect(shown.stdout).toContain('ai_sketch');

    const v1 = (defaultCatalogJson as { versions: Record<string, any>[] }).versions.at(-1) as Record<string, any>;
    const effectiveFrom = Date.now() + 3000;
    const next = { ...v1, version: v1.version + 1, effectiveFrom: new Date(effectiveFrom).toISOString(), features: { ...v1.features, ai_sketch: { medium: 'image', credits: 4 } } };
    const file = path.join(dataDir, 'v2.json');
    fs.writeFileSync(file, JSON.stringify(next));
    const published = await cli(['catalog', 'publish', file]);
    expect(published.stderr).toBe('');
    expect(published.code).toBe(0);

    // The RUNNING service picks the new version up (it re-reads the catalog stream at most once a
    // second): no restart, just wait until the version is in force.
    await new Promise((r) => setTimeout(r, Math.max(0, effectiveFrom - Date.now() + 200)));

    const redriven = await cli(['dlq', 'redrive', '--id', id, '--reason', 'catalog v2 adds ai_sketch']);
    expect(redriven.stderr).toBe('');
    expect(redriven.code).toBe(0);
    expect(redriven.stdout).toContain('redriven to');

    const usage = await until(
      async () => (await api(app!.url, 'GET', `/v1/spaces/${spaceId}/usage`)).body,
      (b) => b?.pools?.ai_image_credits?.used === 4,
      'the re-driven usage to count',
    );
    expect(usage.pools.ai_image_credits.used).toBe(4);

    const list = JSON.parse((await cli(['dlq', 'list', '--format', 'json'])).stdout);
    expect(list).toHaveLength(1);
    expect(list[0].redriven).toMatchObject({ reason: 'catalog v2 adds ai_sketch' });
    const again = await cli(['dlq', 'redrive', '--id', id]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('already redriven');
  });
});
