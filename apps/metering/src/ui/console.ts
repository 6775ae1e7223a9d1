/**
 * The ops console (GET /ui/): find a Space, Spaces nearest or over their limits, recent threshold
 * and reset notifications, dead letters with their reasons (re-drive for admins), catalog
 * versions, projection and relay lag. Every list is bounded.
 */
import { type CatalogVersion, NOTIFICATION_EVENT_TYPES, SPACE_STREAM_PREFIX, spaceIdOfStored } from '@metering/domain';
import type { EventStore, StoredEvent } from '@metering/event-store';
import { type DeadLetterEntry, listDeadLetters } from '../admin/dead-letter-ops';
import type { Metrics } from '../observability/metrics';
import type { BalanceQueries } from '../projection/balance-read-model';
import type { BreakdownReadModel, WatchRow } from '../projection/breakdown/breakdown';
import { esc, fmt, layout, limitsText, pct, when } from './html';
import { POOL_LABELS } from './screen-data';

export interface ConsoleData {
  watch: WatchRow[];
  notifications: StoredEvent[];
  deadLetters: DeadLetterEntry[];
  deadLetterCount: number;
  catalog: CatalogVersion[];
  lag: { head: string; balances: string; breakdown: string; projectionLag: number | null; relayLag: number | null };
}

/** Recent notifications: those among the last NOTIFICATION_WINDOW store positions. */
export const NOTIFICATION_WINDOW = 5000n;

async function gauge(metrics: Metrics, name: string): Promise<number | null> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return null;
  const v = (await m.get()).values;
  return v.length ? v[0].value : null;
}

export async function readConsole(store: EventStore, readModel: BalanceQueries, breakdown: BreakdownReadModel, catalog: CatalogVersion[], metrics: Metrics, kafka: boolean): Promise<ConsoleData> {
  const head = await store.headPosition();
  const after = head > NOTIFICATION_WINDOW ? head - NOTIFICATION_WINDOW : 0n;
  const [watch, recent, letters, balances, bd, projectionLag, relayLag] = await Promise.all([
    breakdown.watchList(25),
    store.readAll({ after, maxCount: Number(NOTIFICATION_WINDOW), streamPrefix: SPACE_STREAM_PREFIX, types: [...NOTIFICATION_EVENT_TYPES] }),
    listDeadLetters(store),
    readModel.checkpoint(),
    breakdown.checkpoint(),
    gauge(metrics, 'metering_projection_lag_events'),
    kafka ? gauge(metrics, 'metering_relay_lag_events') : Promise.resolve(null), // no relay without Kafka
  ]);
  const deadLetters = [...letters].sort((a, b) => (BigInt(b.position) > BigInt(a.position) ? 1 : -1)).slice(0, 50);
  return {
    watch,
    notifications: recent.slice(-25).reverse(),
    deadLetters,
    deadLetterCount: letters.length,
    catalog: [...catalog].sort((a, b) => b.version - a.version),
    lag: { head: head.toString(), balances: balances.toString(), breakdown: bd.toString(), projectionLag, relayLag },
  };
}

const wrap = (label: string, table: string) => `<div class="table-wrap" role="region" aria-label="${esc(label)}" tabindex="0">${table}</div>`;

function notificationText(e: StoredEvent): { what: string; detail: string } {
  const d = e.data as Record<string, unknown>;
  if (e.type === 'ThresholdCrossed') {
    const pool = POOL_LABELS[d.pool as keyof typeof POOL_LABELS] ?? String(d.pool);
    return { what: `${d.threshold} % of ${pool}`, detail: `${fmt(Number(d.used))} of ${fmt(Number(d.limit))} (period from ${when(String(d.periodStart))})` };
  }
  return { what: 'Period reset', detail: `new period from ${when(String(d.periodStart))}; ${d.plan}/${d.cycle}` };
}

export function consolePage(
  d: ConsoleData,
  opts: { canAdmin: boolean; kafka: boolean; csrf: string; signedIn: boolean; keysConfigured: boolean; secretIsRandom: boolean },
): string {
  const watch = d.watch.length
    ? wrap(
        'Spaces nearest or over their limits',
        `<table><caption>Spaces nearest or over their limits</caption>
<thead><tr><th scope="col">Space</th><th scope="col">Pool</th><th scope="col">Threshold</th><th scope="col">Used at crossing</th><th scope="col">Period from</th><th scope="col">Crossed</th></tr></thead>
<tbody>${d.watch
          .map(
            (w) =>
              `<tr><th scope="row"><a href="/ui/spaces/${encodeURIComponent(w.spaceId)}">${esc(w.spaceId)}</a></th><td>${esc(POOL_LABELS[w.pool] ?? w.pool)}</td><td>${esc(w.threshold)} %</td><td>${esc(fmt(w.used))} of ${esc(fmt(w.limit))}${w.limit > 0 ? ` (${esc(pct(Math.round((w.used * 10_000) / w.limit) / 100))})` : ''}</td><td>${esc(when(new Date(w.periodStart).toISOString()))}</td><td>${esc(when(w.recordedAt))}</td></tr>`,
          )
          .join('')}</tbody></table>`,
      )
    : '<p class="muted">No Space has crossed a threshold in its latest period.</p>';
  const notes = d.notifications.length
    ? wrap(
        'Recent notifications',
        `<table><caption>Recent threshold and reset notifications</caption>
<thead><tr><th scope="col">Space</th><th scope="col">Notification</th><th scope="col">Detail</th><th scope="col">Recorded</th></tr></thead>
<tbody>${d.notifications
          .map((e) => {
            const t = notificationText(e);
            const space = spaceIdOfStored(e);
            return `<tr><th scope="row"><a href="/ui/spaces/${encodeURIComponent(space)}">${esc(space)}</a></th><td>${esc(t.what)}</td><td class="reason">${esc(t.detail)}</td><td>${esc(when(e.recordedAt))}</td></tr>`;
          })
          .join('')}</tbody></table>`,
      )
    : `<p class="muted">No threshold or reset notification among the last ${NOTIFICATION_WINDOW} stored events.</p>`;
  const redriveNote = !opts.kafka
    ? '<p class="muted">Re-drive sends a letter back to its Kafka topic: this instance has no Kafka (KAFKA_BROKERS).</p>'
    : !opts.canAdmin
      ? '<p class="muted">Read-only: re-drive needs an API key with the admin scope.</p>'
      : '';
  const letters = d.deadLetters.length
    ? wrap(
        'Dead letters',
        `<table><caption>Dead letters (${esc(d.deadLetterCount)}, latest first)</caption>
<thead><tr><th scope="col">Id</th><th scope="col">Topic / partition / offset</th><th scope="col">Reason</th><th scope="col">Recorded</th><th scope="col">Re-drive</th></tr></thead>
<tbody>${d.deadLetters
          .map((e) => {
            const l = e.letter;
            const action = e.redriven
              ? `re-driven ${esc(when(e.redriven.at))}`
              : opts.canAdmin && opts.kafka
                ? `<button type="button" data-redrive="${esc(l.deadLetterId)}" data-csrf="${esc(opts.csrf)}" aria-describedby="redrive-${esc(l.deadLetterId)}">Re-drive</button> <span id="redrive-${esc(l.deadLetterId)}" role="status"></span>`
                : 'pending';
            return `<tr><th scope="row"><code>${esc(l.deadLetterId)}</code></th><td>${esc(l.topic)} / ${esc(l.partition)} / ${esc(l.offset)}</td><td class="reason">${esc(l.reason)}</td><td>${esc(when(l.recordedAt))}</td><td>${action}</td></tr>`;
          })
          .join('')}</tbody></table>`,
      )
    : '<p class="muted">No dead letters.</p>';
  const catalog = wrap(
    'Catalog versions',
    `<table><caption>Catalog versions</caption>
<thead><tr><th scope="col">Version</th><th scope="col">Effective from</th><th scope="col">Pro monthly</th><th scope="col">Thresholds</th><th scope="col">Notes</th></tr></thead>
<tbody>${d.catalog
      .map(
        (v) =>
          `<tr><th scope="row">${esc(v.version)}</th><td>${esc(when(v.effectiveFrom))}</td><td class="reason">${v.plans.pro?.monthly ? esc(limitsText(v.plans.pro.monthly)) : 'n/a'}</td><td>${esc(v.thresholds.map((t) => `${t} %`).join(', '))}</td><td class="reason">${esc(v.notes ?? '')}</td></tr>`,
      )
      .join('')}</tbody></table>`,
  );
  const lag = `<dl class="facts">
<div><dt>Store head</dt><dd data-field="head">${esc(d.lag.head)}</dd></div>
<div><dt>Balances at</dt><dd>${esc(d.lag.balances)}</dd></div>
<div><dt>Breakdown at</dt><dd>${esc(d.lag.breakdown)}</dd></div>
<div><dt>Projection lag</dt><dd data-field="projection-lag">${d.lag.projectionLag === null ? 'n/a' : `${esc(fmt(d.lag.projectionLag))} events`}</dd></div>
<div><dt>Relay lag</dt><dd data-field="relay-lag">${d.lag.relayLag === null ? 'n/a (no Kafka relay here)' : `${esc(fmt(d.lag.relayLag))} events`}</dd></div>
</dl>`;
  const session = opts.keysConfigured
    ? opts.signedIn
      ? `<p><button type="button" class="secondary" id="logout" data-csrf="${esc(opts.csrf)}">Forget my key</button></p>`
      : ''
    : '<p class="muted">API_KEYS is not set: this console and the API are open on this loopback address.</p>';
  return layout({
    title: 'Metering ops console',
    body: `<main>
<header class="top"><h1>Metering ops console</h1>${session}${opts.secretIsRandom ? '<p class="muted">UI_LINK_SECRET is not set: signed links and sessions last until this process stops.</p>' : ''}</header>
<section aria-labelledby="find-h" class="panel">
<h2 id="find-h">Find a Space</h2>
<form class="inline" method="get" action="/ui/spaces" role="search">
<div><label for="space-id">Space id</label><input type="text" id="space-id" name="spaceId" required autocomplete="off" spellcheck="false"></div>
<button type="submit">Show usage</button>
</form>
</section>
<section aria-labelledby="watch-h"><h2 id="watch-h">Spaces nearest or over their limits</h2>${watch}</section>
<section aria-labelledby="notes-h"><h2 id="notes-h">Recent notifications</h2>${notes}</section>
<section aria-labelledby="dlq-h"><h2 id="dlq-h">Dead letters</h2>${redriveNote}${letters}</section>
<section aria-labelledby="catalog-h"><h2 id="catalog-h">Catalog</h2>${catalog}</section>
<section aria-labelledby="lag-h"><h2 id="lag-h">Projection and relay</h2>${lag}</section>
</main>`,
  });
}

export function loginPage(): string {
  return layout({
    title: 'Metering ops console: sign in',
    body: `<main>
<h1>Metering ops console</h1>
<p>This service has API keys: give one (read scope to look, admin scope to re-drive dead letters). The key is checked once and not stored: the console keeps a signed session cookie for 8 hours.</p>
<form id="login-form" class="inline">
<div><label for="key">API key</label><input type="password" id="key" name="key" required autocomplete="off"></div>
<button type="submit">Sign in</button>
</form>
<p id="login-message" role="alert"></p>
</main>`,
  });
}
