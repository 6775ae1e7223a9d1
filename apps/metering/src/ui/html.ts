/**
 * Server-rendered HTML of the usage screen and the ops console: plain template functions; every
 * value goes through `esc`. No inline script or style (the pages' CSP forbids both): CSS and the
 * refresh script are served from /ui/assets/.
 */
import { POOLS, type Limits } from '@metering/domain';
import { ASSET_VERSION } from './assets';
import { type BreakdownLine, type HistoryPeriod, POOL_LABELS, type ScreenData, type ScreenPool } from './screen-data';

export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const fmt = (n: number): string => n.toLocaleString('en-US');
const pct = (n: number): string => `${n.toLocaleString('en-US', { maximumFractionDigits: 2 })} %`;
/** "2026-07-15 09:00 UTC": unambiguous and short. */
export const when = (isoText: string | null): string => (isoText ? `${isoText.slice(0, 10)} ${isoText.slice(11, 16)} UTC` : '');

export function layout(opts: { title: string; body: string; bodyAttrs?: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(opts.title)}</title>
<link rel="stylesheet" href="/ui/assets/ui.css?v=${ASSET_VERSION}">
<link rel="icon" href="data:,">
<script src="/ui/assets/ui.js?v=${ASSET_VERSION}" defer></script>
</head>
<body${opts.bodyAttrs ? ` ${opts.bodyAttrs}` : ''}>
${opts.body}
</body>
</html>`;
}

const STATE_TEXT: Record<ScreenPool['state'], string> = {
  ok: 'Under 80 %',
  warning: '80 % reached',
  limit: 'Limit reached',
  over: 'Over the limit',
};

function poolBar(p: ScreenPool): string {
  const width = Math.min(100, Math.max(0, p.percent));
  const usedText = p.pool === 'batch_exports' ? `${fmt(p.used)} of ${fmt(p.limit)} exports` : `${fmt(p.used)} of ${fmt(p.limit)} credits`;
  return `<li class="pool pool-${p.state}" data-pool="${esc(p.pool)}">
  <div class="pool-head"><h3 class="pool-name">${esc(p.label)}</h3><span class="pool-percent" data-field="percent">${esc(pct(p.percent))}</span></div>
  <svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label="${esc(`${p.label}: ${usedText}, ${pct(p.percent)}`)}" focusable="false">
    <rect class="bar-track" x="0" y="0" width="100" height="6"></rect>
    <rect class="bar-fill" x="0" y="0" width="${width}" height="6"></rect>
    <line class="bar-mark" x1="80" y1="0" x2="80" y2="6"></line>
  </svg>
  <p class="pool-numbers"><span data-field="used">${esc(fmt(p.used))}</span> used of <span data-field="limit">${esc(fmt(p.limit))}</span>${p.pool === 'batch_exports' ? ' exports' : ' credits'}; <span data-field="remaining">${esc(fmt(p.remaining))}</span> left</p>
  <p class="badge badge-${p.state}" data-field="state">${esc(STATE_TEXT[p.state])}${p.over ? ` (${esc(pct(p.percent))})` : ''}</p>
</li>`;
}

function breakdownTable(caption: string, head: string, lines: BreakdownLine[], empty: string): string {
  if (lines.length === 0) return `<h3>${esc(caption)}</h3><p class="muted">${esc(empty)}</p>`;
  const rows = lines
    .map(
      (l) =>
        `<tr><th scope="row">${esc(l.key)}</th><td>${esc(fmt(l.used.ai_image_credits))}</td><td>${esc(fmt(l.used.ai_video_credits))}</td><td>${esc(fmt(l.used.batch_exports))}</td><td>${esc(fmt(l.events))}</td></tr>`,
    )
    .join('\n');
  return `<div class="table-wrap" role="region" aria-label="${esc(caption)}" tabindex="0">
<table>
<caption>${esc(caption)}</caption>
<thead><tr><th scope="col">${esc(head)}</th><th scope="col">AI image credits</th><th scope="col">AI video credits</th><th scope="col">Batch exports</th><th scope="col">Uses</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</div>`;
}

/** One small bar chart per pool over the last periods, plus the same numbers as a (visually hidden) table. */
function historyChart(history: HistoryPeriod[]): string {
  const shown = history.filter((h) => h.current || Date.parse(h.periodStart) > 0 || POOLS.some((p) => h.used[p] > 0));
  const n = shown.length;
  const w = 12 * 10;
  const charts = POOLS.map((pool) => {
    const max = Math.max(1, ...shown.map((h) => h.used[pool]));
    const bars = shown
      .map((h, i) => {
        const hgt = h.used[pool] === 0 ? 0 : Math.max(1, Math.round((h.used[pool] / max) * 40));
        return `<rect class="${h.current ? 'hist-bar hist-current' : 'hist-bar'}" x="${i * 10 + 1}" y="${40 - hgt}" width="8" height="${hgt}"></rect>`;
      })
      .join('');
    const label = `${POOL_LABELS[pool]} used in the last ${n} period${n === 1 ? '' : 's'}: ${shown.map((h) => `${h.periodStart.slice(0, 10)} ${fmt(h.used[pool])}`).join(', ')}`;
    return `<figure class="hist">
<figcaption>${esc(POOL_LABELS[pool])}</figcaption>
<svg viewBox="0 0 ${w} 41" role="img" aria-label="${esc(label)}" focusable="false"><line class="hist-base" x1="0" y1="40.5" x2="${w}" y2="40.5"></line>${bars}</svg>
</figure>`;
  }).join('\n');
  const table = `<div class="visually-hidden"><table>
<caption>Usage per period</caption>
<thead><tr><th scope="col">Period start</th>${POOLS.map((p) => `<th scope="col">${esc(POOL_LABELS[p])}</th>`).join('')}</tr></thead>
<tbody>${shown.map((h) => `<tr><th scope="row">${esc(h.periodStart.slice(0, 10))}${h.current ? ' (running)' : ''}</th>${POOLS.map((p) => `<td>${esc(fmt(h.used[p]))}</td>`).join('')}</tr>`).join('')}</tbody>
</table></div>`;
  return `<div class="hist-grid">${charts}</div>\n${table}`;
}

/** The part of the screen the refresh script replaces. */
export function screenLive(d: ScreenData): string {
  const v = d.view;
  const renewal = v.nextResetAt ? `<span data-field="next-reset">${esc(when(v.nextResetAt))}</span>` : '<span data-field="next-reset">never resets</span>';
  return `<dl class="facts">
  <div><dt>Plan</dt><dd data-field="plan">${esc(v.plan)}</dd></div>
  <div><dt>Cycle</dt><dd data-field="cycle">${esc(v.cycle)}</dd></div>
  <div><dt>Period start</dt><dd data-field="period-start">${esc(when(v.periodStart))}</dd></div>
  <div><dt>Next renewal</dt><dd>${renewal}</dd></div>
</dl>
<section aria-labelledby="pools-h">
<h2 id="pools-h">Allowance used this period</h2>
<ul class="pools">
${d.pools.map(poolBar).join('\n')}
</ul>
</section>
<section aria-labelledby="breakdown-h">
<h2 id="breakdown-h">Who used it, and with what (this period)</h2>
${breakdownTable('By member', 'Member', d.byMember, 'No usage in this period yet.')}
${breakdownTable('By feature', 'Feature', d.byFeature, 'No usage in this period yet.')}
</section>
<section aria-labelledby="history-h">
<h2 id="history-h">Usage per period (${HISTORY_LABEL(d.history)})</h2>
${historyChart(d.history)}
</section>`;
}

const HISTORY_LABEL = (h: HistoryPeriod[]): string => {
  const n = h.filter((x) => x.current || Date.parse(x.periodStart) > 0 || POOLS.some((p) => x.used[p] > 0)).length;
  return n === 1 ? 'the running period only so far' : `the last ${n} periods`;
};

export function screenPage(d: ScreenData, opts: { refreshUrl: string; refreshMs: number; backToConsole: boolean }): string {
  const v = d.view;
  return layout({
    title: `Usage of ${v.spaceId}`,
    bodyAttrs: `data-refresh-url="${esc(opts.refreshUrl)}" data-refresh-ms="${opts.refreshMs}"`,
    body: `<main class="screen">
<header class="top">
  ${opts.backToConsole ? '<p class="crumb"><a href="/ui/">Ops console</a></p>' : ''}
  <h1>Usage of <span class="space-id">${esc(v.spaceId)}</span></h1>
  <p class="status" role="status" aria-live="polite" data-status>As of ${esc(when(v.asOf))}</p>
</header>
<div id="live">
${screenLive(d)}
</div>
</main>`,
  });
}

export function messagePage(title: string, message: string, extra = ''): string {
  return layout({ title, body: `<main class="screen"><h1>${esc(title)}</h1><p>${esc(message)}</p>${extra}</main>` });
}

export const limitsText = (l: Limits): string => POOLS.map((p) => `${POOL_LABELS[p]} ${fmt(l[p])}`).join(', ');
export { fmt, pct };
