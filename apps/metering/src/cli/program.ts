/**
 * The ops CLI (`metering ...`): audit, balance, rebuild, catalog, dlq. It opens the store and
 * read model exactly as the service does (same environment: loadConfig + openStorage).
 *
 * Exit codes: 0 ok; 1 a difference found (audit) or a refusal (catalog publish, dlq); 2 bad
 * usage or configuration.
 */
import * as fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type Catalog, type CatalogVersion, parseInstantInput } from '@metering/domain';
import type { EventStore } from '@metering/event-store';
import { createKafkaJsMessaging } from '@metering/messaging';
import { openStorage } from '../infra/storage';
import { CatalogService } from '../catalog/catalog.service';
import { type AppConfig, ConfigError, loadConfig } from '../config';
import { systemIds } from '../infra/clock';
import type { BalanceReadModel } from '../projection/balance-read-model';
import { type RebuildProgress, rebuildBalances } from '../projection/rebuild';
import { openBreakdownReadModel } from '../projection/breakdown/open-breakdown'; // issue-15
import { adoptStoreIdentity } from '../projection/store-identity';
import { RELAY_CHECKPOINT } from '../kafka/outbound-relay';
import { type AuditReport, auditSpace, balanceAt, listSpaceIds, poolsOf } from '../admin/audit';
import { type DeadLetterEntry, findDeadLetter, listDeadLetters, redrive } from '../admin/dead-letter-ops';
import { escapeForTerminal, terminalJson } from './terminal';

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  errIsTty: boolean;
  env: NodeJS.ProcessEnv;
}

const defaultIo = (): CliIo => ({
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  errIsTty: Boolean(process.stderr.isTTY),
  env: process.env,
});

class ExitCode extends Error {
  constructor(public readonly code: number, message = '') {
    super(message);
  }
}

const instantArg = (name: string) => (raw: string): number => {
  const t = parseInstantInput(raw);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`${name} must be an ISO-8601 instant (e.g. 2026-05-01T00:00:00Z) or epoch ms`);
  return t;
};

type Storage = { store: EventStore; readModel: BalanceReadModel; config: AppConfig };

async function withStorage<T>(io: CliIo, fn: (s: Storage) => Promise<T>): Promise<T> {
  let config: AppConfig;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new ExitCode(2, `metering: ${err.message}`);
    throw err;
  }
  const { store, readModel } = await openStorage(config);
  try {
    return await fn({ store, readModel, config });
  } finally {
    await readModel.close().catch(() => undefined);
    await store.close().catch(() => undefined);
  }
}

/** The catalog recorded in the store; when none is recorded yet, the configured source (CATALOG_FILE or built-in). */
async function recordedCatalog(store: EventStore, file: string | null): Promise<{ catalog: Catalog; recorded: boolean }> {
  const svc = new CatalogService(store, systemIds, file);
  await svc.refresh();
  const c = svc.catalog as Catalog | undefined;
  if (c?.versions?.length) return { catalog: c, recorded: true };
  return { catalog: CatalogService.readSource(file), recorded: false };
}

const LINES = new Set(['\n', '\r']);

/** The same io with every write escaped (JSON output is escaped by terminalJson first, so it stays valid JSON). */
function terminalSafe(io: CliIo): CliIo {
  return { ...io, out: (s) => io.out(escapeForTerminal(s, LINES)), err: (s) => io.err(escapeForTerminal(s, LINES)) };
}

function table(rows: string[][]): string {
  rows = rows.map((r) => r.map((c) => escapeForTerminal(c ?? '')));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function renderAudit(r: AuditReport, format: string): string {
  if (format === 'json') return terminalJson(r) + '\n';
  const header = ['period_start', 'period_end', 'plan', 'used_image', 'used_video', 'used_batch', 'limit_image', 'limit_video', 'limit_batch', 'thresholds_fired', 'resets'];
  const lines = r.periods.map((p) => [
    p.start, p.end ?? '-', `${p.plan}/${p.cycle}`, String(p.used.ai_image_credits), String(p.used.ai_video_credits), String(p.used.batch_exports),
    String(p.limits.ai_image_credits), String(p.limits.ai_video_credits), String(p.limits.batch_exports),
    p.thresholdsFired.join(' ') || '-', p.resets.length ? String(p.resets.length) : '-',
  ]);
  if (format === 'csv') {
    const out = [['space_id', ...header], ...lines.map((l) => [r.spaceId, ...l])].map((l) => l.map(csvCell).join(',')).join('\n') + '\n';
    return out + r.differences.map((d) => `# DIFF ${r.spaceId} ${d.message}\n`).join('');
  }
  let out = `space ${r.spaceId}: ${r.events} events, ${r.periods.length} periods\n`;
  out += r.periods.length ? table([header, ...lines]) : '(no periods)\n';
  out += r.differences.length
    ? r.differences.map((d) => `DIFF ${r.spaceId}: ${d.message}\n`).join('')
    : 'read model matches the stream\n';
  return out;
}

export function buildProgram(rawIo: CliIo = defaultIo()): Command {
  const io = terminalSafe(rawIo);
  const program = new Command('metering')
    .description('Ops commands for the metering service (same environment as the service: DATA_DIR, EVENT_STORE, DATABASE_URL, ...)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  program
    .command('audit')
    .description('Replays Space streams with the domain and compares them with the balance read model; exit 1 on any difference')
    .option('--space <id>', 'the Space to audit')
    .option('--all', 'audit every Space')
    .option('--from <instant>', 'only periods ending after this instant', instantArg('--from'))
    .option('--to <instant>', 'only periods starting before this instant', instantArg('--to'))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .action(async (o: { space?: string; all?: boolean; from?: number; to?: number; format: string }) => {
      if (!o.space === !o.all) throw new ExitCode(2, 'metering audit: give exactly one of --space <id> or --all');
      await withStorage(io, async ({ store, readModel, config }) => {
        const { catalog } = await recordedCatalog(store, config.catalogFile);
        const now = Date.now();
        if (o.space) {
          const r = await auditSpace(store, readModel, catalog, o.space, { from: o.from, to: o.to, now });
          io.out(renderAudit(r, o.format));
          if (!r.consistent) throw new ExitCode(1);
          return;
        }
        const started = Date.now();
        const ids = await listSpaceIds(store);
        const thresholds = (await readModel.dump()).thresholds;
        const bySpace = new Map<string, typeof thresholds>();
        for (const t of thresholds) bySpace.set(t.spaceId, [...(bySpace.get(t.spaceId) ?? []), t]);
        let inconsistent = 0;
        let differences = 0;
        let lastLine = 0;
        const progress = (done: number, final = false) => {
          const secs = (Date.now() - started) / 1000;
          const line = `audit: ${done}/${ids.length} spaces, ${inconsistent} inconsistent, ${secs.toFixed(1)} s`;
          if (io.errIsTty) io.err(`\r${line}${final ? '\n' : ''}`);
          else if (final || Date.now() - lastLine >= 2000) {
            io.err(`${line}\n`);
            lastLine = Date.now();
          }
        };
        if (o.format === 'csv') io.out('space_id,period_start,period_end,plan,used_image,used_video,used_batch,limit_image,limit_video,limit_batch,thresholds_fired,resets\n');
        for (let i = 0; i < ids.length; i++) {
          const r = await auditSpace(store, readModel, catalog, ids[i], { from: o.from, to: o.to, now, thresholdRows: bySpace.get(ids[i]) ?? [] });
          if (!r.consistent) inconsistent++;
          differences += r.differences.length;
          io.out(o.format === 'csv' ? renderAudit(r, 'csv').split('\n').slice(1).join('\n') : renderAudit(r, o.format));
          progress(i + 1);
        }
        progress(ids.length, true);
        io.err(`audit: ${ids.length} spaces, ${inconsistent} inconsistent, ${differences} differences, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        if (inconsistent) throw new ExitCode(1);
      });
    });

  program
    .command('balance')
    .description(
      'The usage view of a Space as of an instant, folded from its stream. Usage counts at its occurredAt, ' +
        'subscription changes at their effectiveAt, other events (resets, thresholds) at the store\'s recordedAt.',
    )
    .requiredOption('--space <id>', 'the Space')
    .requiredOption('--at <instant>', 'ISO-8601 instant (or epoch ms)', instantArg('--at'))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { space: string; at: number; format: string }) => {
      await withStorage(io, async ({ store, config }) => {
        const { catalog } = await recordedCatalog(store, config.catalogFile);
        const b = await balanceAt(store, catalog, o.space, o.at);
        if (o.format === 'json') {
          io.out(terminalJson({ ...b.view, eventsIncluded: b.eventsIncluded, eventsExcluded: b.eventsExcluded }) + '\n');
          return;
        }
        const v = b.view;
        io.out(`space ${v.spaceId} as of ${v.asOf}: ${v.plan}/${v.cycle}, period ${v.periodStart} .. ${v.periodEnd ?? 'never'} (events: ${b.eventsIncluded} included, ${b.eventsExcluded} later)\n`);
        io.out(
          table([
            ['pool', 'used', 'limit', 'remaining', 'percent'],
            ...Object.entries(v.pools).map(([pool, p]) => [pool, String(p.used), String(p.limit), String(p.remaining), `${p.percent}%${p.over ? ' OVER' : ''}`]),
          ]),
        );
      });
    });

  const rebuild = program.command('rebuild').description('Rebuilds projections from the store');
  rebuild
    .command('balances')
    .description('Clears the balance read model and re-projects every Space stream (stop the service first, or it keeps projecting concurrently)')
    .option('--batch <n>', 'events per page', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError('--batch must be an integer from 1 to 100000');
      return n;
    }, 5000)
    .action(async (o: { batch: number }) => {
      await withStorage(io, async ({ store, readModel, config }) => {
        const breakdown = await openBreakdownReadModel(config, { store, readModel }); // issue-15: rebuilt with the balances
        const started = Date.now();
        let lastLine = 0;
        const line = (p: RebuildProgress, final: boolean) => {
          const secs = Math.max(0.001, (Date.now() - started) / 1000);
          const text = `rebuild: ${p.applied} events, position ${p.position}/${p.head}, ${Math.round(p.applied / secs)} events/s, ${secs.toFixed(1)} s`;
          if (io.errIsTty) io.err(`\r${text}${final ? '\n' : ''}`);
          else if (final || Date.now() - lastLine >= 2000) {
            io.err(`${text}\n`);
            lastLine = Date.now();
          }
        };
        let last: RebuildProgress = { applied: 0, position: 0n, head: await store.headPosition() };
        const applied = await rebuildBalances(store, readModel, {
          batch: o.batch,
          followers: [breakdown], // issue-15
          onProgress: (p) => {
            last = p;
            line(p, false);
          },
        });
        line(last, true);
        // The rebuilt checkpoint is this store's: record its identity; a relay position saved
        // for another store starts again from the beginning (consumers dedupe by event id).
        const reset = await adoptStoreIdentity(store, readModel, [RELAY_CHECKPOINT]);
        for (const name of reset) io.err(`rebuild: position ${name} was not one of this store: reset to the start\n`);
        io.out(`rebuilt balances: ${applied} events applied, checkpoint ${await readModel.checkpoint()}\n`);
        await breakdown.close(); // issue-15
      });
    });

  const catalogCmd = program.command('catalog').description('The versioned catalog');
  catalogCmd
    .command('show')
    .description('Lists catalog versions, effective dates, features and costs')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { format: string }) => {
      await withStorage(io, async ({ store, config }) => {
        const { catalog, recorded } = await recordedCatalog(store, config.catalogFile);
        if (o.format === 'json') {
          io.out(terminalJson({ recorded, versions: catalog.versions }) + '\n');
          return;
        }
        if (!recorded) io.out(`(no version recorded in the store yet; showing ${config.catalogFile ?? 'the built-in catalog'}, recorded on the service's first start)\n`);
        for (const v of catalog.versions) {
          io.out(`version ${v.version}  effective from ${v.effectiveFrom}${v.notes ? `  (${v.notes})` : ''}\n`);
          io.out(`  thresholds: ${v.thresholds.join(', ')} %   per-batch cap: ${Object.entries(v.perBatchCap).map(([p, c]) => `${p} ${c}`).join(', ')}\n`);
          io.out(table([['  feature', 'medium', 'credits'], ...Object.entries(v.features).map(([id, f]) => [`  ${id}`, f.medium, String(f.credits)])]));
          const planRows: string[][] = [['  plan', 'cycle', 'image/video/batch']];
          for (const [plan, cycles] of Object.entries(v.plans)) for (const [cycle, l] of Object.entries(cycles ?? {})) planRows.push([`  ${plan}`, cycle, poolsOf(l)]);
          io.out(table(planRows));
        }
      });
    });
  catalogCmd
    .command('publish')
    .description('Validates a catalog version (JSON file: one version object) and appends it; exit 1 on refusal')
    .argument('<file>', 'JSON file with the next catalog version')
    .action(async (file: string) => {
      let next: CatalogVersion;
      try {
        next = JSON.parse(fs.readFileSync(file, 'utf8')) as CatalogVersion;
      } catch (err) {
        throw new ExitCode(1, `metering catalog publish: ${file}: cannot be read as JSON: ${(err as Error).message}`);
      }
      if (next && typeof next === 'object' && Array.isArray((next as { versions?: unknown }).versions))
        throw new ExitCode(1, `metering catalog publish: ${file}: (file): one_version: give one catalog version object, not a whole catalog with "versions"`);
      await withStorage(io, async ({ store, config }) => {
        const svc = new CatalogService(store, systemIds, config.catalogFile);
        await svc.init();
        try {
          const updated = await svc.publish(next, Date.now());
          io.out(`published catalog version ${next.version}, effective from ${next.effectiveFrom} (${updated.versions.length} versions)\n`);
        } catch (err) {
          throw new ExitCode(1, `metering catalog publish: refused: ${(err as Error).message}`);
        }
      });
    });

  const dlq = program.command('dlq').description('Dead letters recorded in the store');
  const describe = (e: DeadLetterEntry) =>
    [e.letter.deadLetterId, `${e.letter.topic}[${e.letter.partition}]@${e.letter.offset}`, e.letter.key ?? '-', e.letter.recordedAt, e.redriven ? `redriven ${e.redriven.at}` : 'pending', e.letter.reason];
  dlq
    .command('list')
    .description('Lists dead letters (pending and re-driven)')
    .option('--pending', 'only those not re-driven yet')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { pending?: boolean; format: string }) => {
      await withStorage(io, async ({ store }) => {
        const all = (await listDeadLetters(store)).filter((e) => !o.pending || !e.redriven);
        if (o.format === 'json') io.out(terminalJson(all.map((e) => ({ ...e.letter, stream: e.stream, position: e.position, redriven: e.redriven }))) + '\n');
        else io.out(all.length ? table([['id', 'source', 'key', 'recorded', 'state', 'reason'], ...all.map(describe)]) : '(no dead letters)\n');
      });
    });
  dlq
    .command('show')
    .description('Shows one dead letter, with its original bytes')
    .argument('<id>', 'dead letter id')
    .action(async (id: string) => {
      await withStorage(io, async ({ store }) => {
        const e = await findDeadLetter(store, id);
        if (!e) throw new ExitCode(1, `metering dlq show: no dead letter ${id}`);
        const bytes = Buffer.from(e.letter.value, 'base64');
        io.out(terminalJson({ ...e.letter, stream: e.stream, position: e.position, redriven: e.redriven, valueUtf8: bytes.toString('utf8') }, 2) + '\n');
      });
    });
  dlq
    .command('redrive')
    .description('Produces dead letters again (original bytes and key, original topic) and records DeadLetterRedriven; needs KAFKA_BROKERS')
    .option('--id <id>', 'one dead letter (default: every pending one)')
    .option('--reason <text>', 'why (recorded with the re-drive, e.g. "catalog v3 adds the feature")')
    .action(async (o: { id?: string; reason?: string }) => {
      await withStorage(io, async ({ store, config }) => {
        if (!config.kafka) throw new ExitCode(2, 'metering dlq redrive: KAFKA_BROKERS is required (the letters go back to their Kafka topics)');
        let targets: DeadLetterEntry[];
        if (o.id) {
          const e = await findDeadLetter(store, o.id);
          if (!e) throw new ExitCode(1, `metering dlq redrive: no dead letter ${o.id}`);
          if (e.redriven) {
            io.out(`${o.id}: already redriven at ${e.redriven.at}\n`);
            throw new ExitCode(1);
          }
          targets = [e];
        } else targets = (await listDeadLetters(store)).filter((e) => !e.redriven);
        const messaging = createKafkaJsMessaging(config.kafka.connection);
        const producer = messaging.producer();
        try {
          for (const t of targets) {
            const r = await redrive(store, producer, t, o.reason ?? null, Date.now);
            io.out(`${r.deadLetterId}: ${r.outcome === 'redriven' ? `redriven to ${t.letter.topic}` : 'already redriven'}\n`);
          }
          io.out(`${targets.length} dead letter(s) processed\n`);
        } finally {
          await producer.close();
        }
      });
    });

  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof ExitCode) {
      if (err.message) io.err(`${err.message}\n`);
      return err.code;
    }
    if (err instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    io.err(`metering: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

