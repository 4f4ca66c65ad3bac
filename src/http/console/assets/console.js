// The operators' console: projections, parked events, subscribers, an event browser and
// charts, kept live by the admin API's status stream (GET /admin/events).
import { call, followStatus, token, Unauthorized } from './api.js';
import { lineChart } from './charts.js';
import { reactionActions, refreshParkedReactions, renderReactions } from './reactions.js';
import { archiveActions, renderArchive } from './archive.js';

const $ = (selector) => document.querySelector(selector);
/** How much history the charts show. */
const CHART_MS = 2 * 60_000;
/** Samples of `{ t, last, lags }` from the status stream, for the charts. */
const samples = [];
let ticks = 0;
let parkedTotal = -1;
let parkedReactions = -1;

function td(text, className) {
  const cell = document.createElement('td');
  cell.textContent = text === undefined || text === null ? '–' : String(text);
  if (className) cell.className = className;
  return cell;
}

function button(label, action, data) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.dataset.action = action;
  Object.assign(b.dataset, data);
  return b;
}

function say(text, isError = false) {
  $('#message').textContent = text;
  $('#message').classList.toggle('error', isError);
}

const seconds = (ms) => (ms === null || ms === undefined ? 'unknown' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

function renderProjections(status) {
  const rows = status.projections.map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.projection = p.name;
    tr.dataset.state = p.state;
    tr.append(td(p.name), td(p.state, 'state'), td(p.generation, 'num generation'), td(p.position, 'num position'), td(p.lagEvents, 'num lag-events'));
    tr.append(td(p.lagMs === null ? '?' : p.lagMs, 'num lag-ms'), td(p.parked, 'num'));
    const rebuild = td('', 'rebuild');
    if (p.rebuild) {
      const bar = document.createElement('progress');
      bar.max = Math.max(1, p.rebuild.target);
      bar.value = p.rebuild.position;
      const eta = p.rebuild.etaMs === null ? 'ETA unknown' : `ETA ${seconds(p.rebuild.etaMs)}`;
      rebuild.replaceChildren(bar, ` ${p.rebuild.position}/${p.rebuild.target} · ${eta}`);
    } else if (p.lastRebuildError) rebuild.textContent = `last rebuild failed: ${p.lastRebuildError}`;
    const actions = td('');
    actions.replaceChildren();
    const rebuildButton = button('Rebuild', 'rebuild', { name: p.name });
    rebuildButton.disabled = p.rebuild !== undefined;
    actions.append(rebuildButton);
    if (p.state === 'stopped') actions.append(' ', button('Resume', 'resume', { name: p.name }));
    tr.append(rebuild, actions);
    if (p.error) tr.title = p.error;
    return tr;
  });
  $('#projections tbody').replaceChildren(...rows);
  const n = status.notifier;
  $('#notifier').textContent = n
    ? `Notifier: ${n.state}, position ${n.position}, ${n.lagEvents} commits behind${n.error ? ` (${n.error})` : ''}.`
    : 'Notifier: none on a read replica; the command hosts announce every commit.';
  const store = status.eventStore;
  $('#summary').textContent = `EVENTS ${store.reachable ? `at position ${store.lastPosition}` : 'unreachable'} · status at ${new Date(status.at).toLocaleTimeString()}`;
}

function renderCharts(status) {
  const t = Date.parse(status.at);
  samples.push({ t, last: status.eventStore.lastPosition, lags: Object.fromEntries(status.projections.map((p) => [p.name, p.lagEvents])) });
  while (samples.length > 0 && samples[0].t < t - CHART_MS) samples.shift();
  // The charts span what they have, up to CHART_MS.
  const t0 = Math.max(t - CHART_MS, samples[0].t);
  const rate = samples.slice(1).map((s, i) => ({ t: s.t, v: Math.max(0, ((s.last - samples[i].last) * 1000) / Math.max(1, s.t - samples[i].t)) }));
  lineChart($('#throughput-chart'), [{ name: 'commits/s', points: rate }], t0, t);
  const names = status.projections.map((p) => p.name);
  lineChart($('#lag-chart'), names.map((name) => ({ name, points: samples.map((s) => ({ t: s.t, v: s.lags[name] ?? 0 })) })), t0, t);
}

async function refreshParked() {
  const { body } = await call('GET', '/admin/parked');
  const rows = (body.parked ?? []).map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.parked = `${p.projection}/${p.position}/${p.eventIndex}`;
    tr.append(td(p.projection), td(p.position, 'num'), td(p.eventIndex, 'num'), td(`${p.aggregate} ${p.id}`), td(p.type), td(p.error), td(p.parkedAt));
    const data = { projection: p.projection, position: String(p.position), eventIndex: String(p.eventIndex) };
    const actions = td('');
    actions.replaceChildren(button('Inspect', 'inspect', data), ' ', button('Retry', 'retry', data), ' ', button('Drop', 'drop', data));
    tr.append(actions);
    return tr;
  });
  $('#parked tbody').replaceChildren(...rows);
  $('#parked .empty').hidden = rows.length > 0;
}

async function refreshSubscribers() {
  const { body } = await call('GET', '/admin/subscribers');
  const rows = (body.subscribers ?? []).map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.subscriber = s.name;
    tr.append(td(s.name), td(s.pending, 'num'), td(s.ackPending, 'num'), td(s.replayPending, 'num'), td(s.ackedSequence, 'num'));
    const since = document.createElement('input');
    Object.assign(since, { type: 'number', min: '1', step: '1', value: '1', name: 'sincePosition' });
    const actions = td('');
    actions.replaceChildren(since, ' ', button('Re-publish', 'republish', { name: s.name }));
    tr.append(actions);
    return tr;
  });
  $('#subscribers tbody').replaceChildren(...rows);
  $('#subscribers .empty').hidden = rows.length > 0;
}

function onStatus(status) {
  $('#connection').dataset.state = 'live';
  $('#connection').textContent = 'live';
  renderProjections(status);
  renderCharts(status);
  const parked = status.projections.reduce((n, p) => n + p.parked, 0);
  // Parked events when their count changes, subscribers every fifth status: both cost a read each.
  if (parked !== parkedTotal) void refreshParked().then(() => (parkedTotal = parked), report);
  renderArchive(status);
  const parkedInputs = renderReactions(status);
  if (parkedInputs !== parkedReactions) void refreshParkedReactions().then(() => (parkedReactions = parkedInputs), report);
  if (ticks++ % 5 === 0) void refreshSubscribers().catch(report);
}

/** Says what an action answered: its error's message, or `done` with what it returned. */
function answer(what, res) {
  if (res.ok) say(`${what}: ${res.status === 202 ? 'started' : 'done'} ${JSON.stringify(res.body)}`);
  else say(`${what}: ${res.status} ${res.body.error}: ${res.body.message}`, true);
  return res;
}

const actions = {
  rebuild: async ({ name }) => answer(`rebuild ${name}`, await call('POST', `/admin/projections/${encodeURIComponent(name)}/rebuild`)),
  resume: async ({ name }) => answer(`resume ${name}`, await call('POST', `/admin/projections/${encodeURIComponent(name)}/resume`)),
  inspect: async ({ projection, position, eventIndex }) => {
    const res = await call('GET', `/admin/commits/${position}`);
    if (!res.ok) return answer(`commit ${position}`, res);
    $('#parked-detail').hidden = false;
    $('#parked-detail').textContent = JSON.stringify({ projection, event: res.body.events[Number(eventIndex)], commit: res.body }, null, 2);
  },
  retry: async ({ projection, position, eventIndex }) => {
    answer(`retry ${projection}/${position}/${eventIndex}`, await call('POST', `/admin/parked/${projection}/${position}/${eventIndex}/retry`));
    await refreshParked();
  },
  drop: async ({ projection, position, eventIndex }) => {
    answer(`drop ${projection}/${position}/${eventIndex}`, await call('DELETE', `/admin/parked/${projection}/${position}/${eventIndex}`));
    await refreshParked();
  },
  ...Object.fromEntries(
    Object.entries(reactionActions).map(([name, act]) => [
      name,
      async (data) => {
        answer(`${name} ${data.name}`, await act(data));
        await refreshParkedReactions();
      },
    ]),
  ),
  ...Object.fromEntries(Object.entries(archiveActions).map(([name, act]) => [name, async () => answer(name === 'pauseArchiver' ? 'pause the archiver' : 'resume the archiver', await act())])),
  republish: async ({ name }, target) => {
    const since = Number(target.closest('tr').querySelector('input[name=sincePosition]').value);
    answer(`re-publish to ${name}`, await call('POST', `/admin/subscribers/${encodeURIComponent(name)}/republish`, { sincePosition: since }));
    await refreshSubscribers();
  },
};

async function browse(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  let shown;
  if (event.target.id === 'by-position') shown = (await call('GET', `/admin/commits/${encodeURIComponent(form.get('position'))}`)).body;
  else {
    const base = `/admin/aggregates/${encodeURIComponent(form.get('aggregate'))}/${encodeURIComponent(form.get('id'))}`;
    const at = form.get('atVersion');
    const [history, state] = await Promise.all([call('GET', `${base}/history`), call('GET', `${base}/state${at ? `?atVersion=${encodeURIComponent(at)}` : ''}`)]);
    shown = { state: state.body, history: history.body };
  }
  $('#browser-result').textContent = JSON.stringify(shown, null, 2);
}

function report(err) {
  if (err instanceof Unauthorized) return signIn(token.get() ? 'That token was not accepted.' : '');
  say(String(err.message ?? err), true);
}

let stream;

function signIn(why) {
  stream?.abort();
  $('#main').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = why;
  $('#token').focus();
}

/** Follows the status stream for as long as the page is open, reconnecting after a second. */
async function live() {
  stream = new AbortController();
  const { signal } = stream;
  while (!signal.aborted) {
    try {
      await followStatus(onStatus, signal);
    } catch (err) {
      if (err instanceof Unauthorized) return report(err);
    }
    if (signal.aborted) return;
    $('#connection').dataset.state = 'lost';
    $('#connection').textContent = 'reconnecting…';
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function start() {
  try {
    const { body } = await call('GET', '/admin/aggregates');
    const select = $('#by-aggregate select');
    select.replaceChildren(...body.aggregates.map((a) => Object.assign(document.createElement('option'), { value: a.plural, textContent: a.plural })));
  } catch (err) {
    return report(err);
  }
  $('#signin').hidden = true;
  $('#main').hidden = false;
  parkedTotal = -1;
  parkedReactions = -1;
  ticks = 0;
  void live();
}

document.addEventListener('click', (event) => {
  const target = event.target.closest('button[data-action]');
  if (!target) return;
  target.disabled = true;
  actions[target.dataset.action]({ ...target.dataset }, target).catch(report).finally(() => (target.disabled = false));
});
$('#by-position').addEventListener('submit', (e) => void browse(e).catch(report));
$('#by-aggregate').addEventListener('submit', (e) => void browse(e).catch(report));
$('#signin').addEventListener('submit', (event) => {
  event.preventDefault();
  token.set($('#token').value);
  $('#token').value = '';
  void start();
});
void start();
