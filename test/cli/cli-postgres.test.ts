/**
 * The BUILT CLI against PostgreSQL (EVENT_STORE=postgres, own schema): audit finds a corrupted
 * read-model row there too, and a rebuild repairs it.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { Client } from 'pg';
import { type InboundEvent } from '@metering/domain';
import { createEventStore } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { PostgresBalanceReadModel } from '../../apps/metering/src/projection/postgres-balance-read-model';
import { Projector } from '../../apps/metering/src/projection/projector';
import { PG_URL, dropSchema, freshSchemaName } from '../event-store/pg-test-db';

const CLI = path.join(path.resolve(__dirname, '..', '..'), 'dist', 'apps', 'metering', 'src', 'cli.js');
const schema = freshSchemaName('cli');
const DAY = 86_400_000;
const now = Date.now();

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, EVENT_STORE: 'postgres', DATABASE_URL: PG_URL, PG_SCHEMA: schema, LOG_LEVEL: 'silent' };
    delete env.KAFKA_BROKERS;
    execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

afterAll(async () => {
  await dropSchema(schema);
});

it('audit on PostgreSQL: consistent, then a corrupted row is named (exit 1), then rebuild repairs it', async () => {
  const store = await createEventStore({ kind: 'postgres', url: PG_URL, schema });
  const catalog = new CatalogService(store, systemIds, null);
  await catalog.init();
  const ingest = new IngestService(store, new SpaceRepository(store), catalog, { now: () => now }, systemIds);
  const spaceId = 'pg-a';
  const events: InboundEvent[] = [
    { type: 'subscription-changed', eventId: 's', spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: new Date(now - 3 * DAY).toISOString() },
    { type: 'generation-performed', eventId: 'g', spaceId, userId: 'u', feature: 'ai_backgrounds', medium: 'image', generations: 5, occurredAt: new Date(now - DAY).toISOString() },
  ];
  expect((await ingest.ingest(events)).map((o) => o.outcome)).toEqual(['accepted', 'accepted']);
  const readModel = new PostgresBalanceReadModel({ pool: store.pool, url: PG_URL, schema });
  await readModel.init();
  await new Projector(store, readModel, { error: () => undefined }).catchUp();
  await readModel.close();
  await store.close();

  const ok = await cli(['audit', '--space', spaceId]);
  expect(ok.stderr).toBe('');
  expect(ok.code).toBe(0);

  const c = new Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`UPDATE "${schema}".rm_usage SET ai_image_credits = ai_image_credits + 1 WHERE space_id = $1`, [spaceId]);
  await c.end();
  const bad = await cli(['audit', '--space', spaceId]);
  expect(bad.code).toBe(1);
  expect(bad.stdout).toMatch(/ai_image_credits: stream says 10, read model says 11/);

  expect((await cli(['rebuild', 'balances'])).code).toBe(0);
  expect((await cli(['audit', '--all'])).code).toBe(0);
});
