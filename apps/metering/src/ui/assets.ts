/**
 * The pages' stylesheet and refresh script, served by the service from memory at
 * /ui/assets/ui.css and /ui/assets/ui.js (no CDN, no build step; the CSP allows 'self' only).
 */
import { createHash } from 'node:crypto';

export const UI_CSS = `
:root { --fg: #1b1f24; --muted: #4a5360; --bg: #ffffff; --panel: #f4f6f8; --line: #c9d0d8;
  --ok: #1e6b34; --warn: #8a4b00; --bad: #b3261e; --accent: #0b57d0; --track: #e3e7ec; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); background: var(--bg); line-height: 1.45; }
body { margin: 0; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .25rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, [tabindex]:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.muted, .status, .crumb { color: var(--muted); }
.status { margin: 0; font-size: .9rem; }
.status.error { color: var(--bad); font-weight: 600; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .5rem; margin: 1rem 0; }
.facts div { background: var(--panel); border-radius: .5rem; padding: .5rem .75rem; }
.facts dt { font-size: .8rem; color: var(--muted); }
.facts dd { margin: 0; font-weight: 600; }
.pools { list-style: none; margin: 0; padding: 0; display: grid; gap: .75rem; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); }
.pool { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; }
.pool-head { display: flex; justify-content: space-between; align-items: baseline; gap: .5rem; }
.pool-name { margin: 0; }
.pool-percent { font-size: 1.4rem; font-weight: 700; }
.bar { display: block; width: 100%; height: .75rem; margin: .5rem 0; }
.bar-track { fill: var(--track); }
.bar-fill { fill: var(--ok); }
.bar-mark { stroke: var(--fg); stroke-width: .6; vector-effect: non-scaling-stroke; }
.pool-warning .bar-fill { fill: var(--warn); }
.pool-limit .bar-fill, .pool-over .bar-fill { fill: var(--bad); }
.pool-numbers { margin: 0; }
.badge { display: inline-block; margin: .5rem 0 0; padding: .1rem .5rem; border-radius: 1rem; font-size: .85rem; font-weight: 600; border: 1px solid currentColor; }
.badge-ok { color: var(--ok); }
.badge-warning { color: var(--warn); }
.badge-limit, .badge-over { color: var(--bad); }
.table-wrap { overflow-x: auto; margin: .5rem 0 1rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { padding: .35rem .5rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-size: .85rem; color: var(--muted); }
.hist-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: .75rem; }
.hist { margin: 0; border: 1px solid var(--line); border-radius: .5rem; padding: .5rem; }
.hist figcaption { font-size: .85rem; color: var(--muted); }
.hist svg { display: block; width: 100%; height: 4rem; }
.hist-bar { fill: #6b7c93; }
.hist-current { fill: var(--accent); }
.hist-base { stroke: var(--line); stroke-width: 1; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
form.inline { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
label { display: block; font-size: .9rem; font-weight: 600; }
input[type=text], input[type=password] { font: inherit; padding: .4rem .5rem; border: 1px solid #6b7686; border-radius: .35rem; min-width: 14rem; max-width: 100%; }
button { font: inherit; padding: .4rem .8rem; border-radius: .35rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button:disabled { background: var(--track); color: var(--muted); border-color: var(--line); cursor: not-allowed; }
.panel { background: var(--panel); border-radius: .5rem; padding: .75rem; margin: .5rem 0; }
.reason { white-space: normal; text-align: left; min-width: 16rem; }
@media (max-width: 40rem) {
  main { padding: .75rem; }
  h1 { font-size: 1.25rem; }
  .pool-percent { font-size: 1.2rem; }
}
`;

export const UI_JS = `'use strict';
// Refreshes the usage screen: polls the page's live fragment (same data, same renderer as the
// page) and swaps it in when it changed. Console: the API-key form and the re-drive buttons.
(function () {
  var body = document.body;
  var status = document.querySelector('[data-status]');
  var live = document.getElementById('live');
  var url = body.getAttribute('data-refresh-url');
  var every = Number(body.getAttribute('data-refresh-ms')) || 5000;
  function say(text, isError) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle('error', !!isError);
  }
  function time() { return new Date().toISOString().slice(11, 19) + ' UTC'; }
  if (url && live) {
    var last = live.innerHTML.trim();
    var timer = null;
    var tick = function () {
      fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' }, cache: 'no-store' })
        .then(function (r) {
          if (r.status === 401 || r.status === 403) {
            say('This link has expired or is not valid any more: open the usage screen again from the app.', true);
            clearInterval(timer);
            return null;
          }
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.text();
        })
        .then(function (html) {
          if (html === null) return;
          html = html.trim();
          if (html !== last) { live.innerHTML = html; last = html; }
          say('Updated ' + time());
        })
        .catch(function () { say('Could not refresh (retrying): the numbers shown may be out of date.', true); });
    };
    timer = setInterval(tick, every);
    document.addEventListener('visibilitychange', function () { if (!document.hidden) tick(); });
  }
  var login = document.getElementById('login-form');
  if (login) {
    login.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var key = login.querySelector('input[name=key]').value;
      var msg = document.getElementById('login-message');
      fetch('/ui/session', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: key }) })
        .then(function (r) {
          if (r.ok) { location.reload(); return; }
          return r.json().then(function (b) { msg.textContent = (b && b.message) || ('refused (HTTP ' + r.status + ')'); });
        })
        .catch(function () { msg.textContent = 'The service did not answer.'; });
    });
  }
  var logout = document.getElementById('logout');
  if (logout) logout.addEventListener('click', function () {
    fetch('/ui/session', { method: 'DELETE', credentials: 'same-origin', headers: { 'x-csrf-token': logout.getAttribute('data-csrf') || '' } }).then(function () { location.reload(); });
  });
  Array.prototype.forEach.call(document.querySelectorAll('button[data-redrive]'), function (b) {
    b.addEventListener('click', function () {
      b.disabled = true;
      var out = document.getElementById('redrive-' + b.getAttribute('data-redrive'));
      fetch('/ui/dead-letters/' + encodeURIComponent(b.getAttribute('data-redrive')) + '/redrive', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': b.getAttribute('data-csrf') || '' }, body: '{}'
      })
        .then(function (r) { return r.json().then(function (j) { out.textContent = r.ok ? j.outcome : (j.message || ('HTTP ' + r.status)); if (!r.ok) b.disabled = false; }); })
        .catch(function () { out.textContent = 'The service did not answer.'; b.disabled = false; });
    });
  });
})();
`;

export const ASSET_VERSION = createHash('sha256').update(UI_CSS).update(UI_JS).digest('hex').slice(0, 12);
