/**
 * `npm run torture [-- --events N --spaces N --kills N --seed N --store sqlite|postgres|both --consumers N --hard]`
 *
 * The full fault run of issue 7: once with the SQLite store and once with PostgreSQL (default
 * 200,000 unique valid events over 1,000 Spaces, 12 SIGKILLs, one broker restart, one store outage
 * each), against one real Kafka broker started here. Prints the figures of each run and exits 1 on
 * any miss. Needs the built service (`npx nest build metering`) and PostgreSQL at PG_URL
 * (default postgres://postgres@127.0.0.1:5432/test). Environment overrides: TORTURE_EVENTS,
 * TORTURE_SPACES, TORTURE_KILLS, TORTURE_SEED, TORTURE_STORE, TORTURE_CONSUMERS (PostgreSQL: service
 * processes in one consumer group, killed at random), TORTURE_KILL_GAP_S (pause between kills,
 * "min,max" seconds), TORTURE_RESET_WINDOW_S (when the boundaries placed in the run fall due,
 * "from,to" seconds after the start); TORTURE_SABOTAGE=1 adds a phantom event to the model (the
 * run must then FAIL: a check of the checks).
 */
import { formatFigures, runTorture } from './torture';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startBroker } = require('../kafka/broker') as typeof import('../kafka/broker');

function arg(name: string, env: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  return process.env[env] ?? fallback;
}

/** "a,b" seconds -> [a, b] ms */
function pair(v: string): [number, number] {
  const [a, b] = v.split(',').map((x) => Number(x) * 1000);
  return [a, b];
}

async function main(): Promise<number> {
  const events = Number(arg('events', 'TORTURE_EVENTS', '200000'));
  const spaces = Number(arg('spaces', 'TORTURE_SPACES', '1000'));
  const kills = Number(arg('kills', 'TORTURE_KILLS', '12'));
  const seed = Number(arg('seed', 'TORTURE_SEED', '7'));
  const which = arg('store', 'TORTURE_STORE', 'both');
  const hard = process.argv.includes('--hard');
  const stores = (which === 'both' ? ['sqlite', 'postgres'] : [which]) as ('sqlite' | 'postgres')[];
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s]`;
  const log = (l: string) => process.stderr.write(`${stamp()} ${l}\n`);
  const broker = await startBroker({ fresh: true, log: (m: string) => log(`broker: ${m}`) });
  let failed = false;
  const summaries: string[] = [];
  try {
    for (const store of stores) {
      log(`torture: ${store}, ${events} events, ${spaces} Spaces, ${kills} kills, seed ${seed}`);
      const { figures, misses } = await runTorture({
        store,
        events,
        spaces,
        kills,
        seed,
        broker,
        brokerHardRestart: hard,
        killGapMs: pair(arg('kill-gap-s', 'TORTURE_KILL_GAP_S', '5,25')),
        resetWindowMs: pair(arg('reset-window-s', 'TORTURE_RESET_WINDOW_S', '60,300')),
        convergeTimeoutMs: 45 * 60_000,
        sabotage: process.env.TORTURE_SABOTAGE === '1',
        consumers: Number(arg('consumers', 'TORTURE_CONSUMERS', '1')),
        log,
      });
      const text = `${formatFigures(figures)}\nresult: ${misses.length === 0 ? 'PASS' : `FAIL (${misses.length} misses)`}`;
      summaries.push(text);
      process.stdout.write(`\n== torture ${store} ==\n${text}\n`);
      for (const m of misses.slice(0, 50)) process.stdout.write(`  miss: ${m.split('\n')[0]}\n`);
      if (misses.length) failed = true;
    }
  } finally {
    await broker.stop();
  }
  process.stdout.write(`\n== torture summary (${Math.round((Date.now() - started) / 1000)} s) ==\n${summaries.join('\n\n')}\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`torture: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
