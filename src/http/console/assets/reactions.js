// The console's reactions: reactors and processes with their lag, state, parked inputs,
// open instances and timers, from the status stream; parked inputs from the admin API.
import { call } from './api.js';

const $ = (selector) => document.querySelector(selector);

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '–' : String(text);
  if (className) td.className = className;
  return td;
}

function action(label, name, data) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.dataset.action = name;
  Object.assign(b.dataset, data);
  return b;
}

/** Draws the reactions of a status; answers their parked total, which tells when to read the parked list again. */
export function renderReactions(status) {
  const reactions = status.reactions ?? [];
  $('#reactions').hidden = reactions.length === 0;
  const rows = reactions.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.reaction = r.name;
    tr.dataset.state = r.state;
    const i = r.instances;
    tr.append(cell(r.name), cell(r.kind), cell(r.state, 'state'), cell(r.position, 'num position'), cell(r.lagEvents, 'num lag-events'), cell(r.parked, 'num parked'));
    tr.append(cell(i?.open, 'num open'), cell(i?.timersPending, 'num timers'), cell(i?.nextTimerDue ? new Date(i.nextTimerDue).toLocaleString() : undefined, 'next-due'));
    const actions = cell('');
    actions.replaceChildren();
    if (r.state === 'stopped') actions.append(action('Resume', 'resumeReaction', { name: r.name }));
    tr.append(actions);
    if (r.error) tr.title = r.error;
    return tr;
  });
  $('#reactions tbody').replaceChildren(...rows);
  const holder = status.reactionsHolder;
  $('#reactions-holder').textContent = holder ? `Run by ${holder}.` : 'Nobody holds the reactions lease yet.';
  return reactions.reduce((n, r) => n + r.parked, 0);
}

/** Reads and draws the reactions' parked inputs. */
export async function refreshParkedReactions() {
  const { body } = await call('GET', '/admin/reactions/parked');
  const rows = (body.parked ?? []).map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.parkedReaction = `${p.reaction}/${p.position}/${p.eventIndex}`;
    tr.append(cell(p.reaction), cell(p.position, 'num'), cell(p.eventIndex, 'num'), cell(`${p.aggregate} ${p.id}`), cell(p.type), cell(p.error), cell(p.parkedAt));
    const data = { name: p.reaction, position: String(p.position), eventIndex: String(p.eventIndex) };
    const actions = cell('');
    actions.replaceChildren(action('Retry', 'retryReaction', data), ' ', action('Drop', 'dropReaction', data));
    tr.append(actions);
    return tr;
  });
  $('#parked-reactions tbody').replaceChildren(...rows);
  $('#parked-reactions').hidden = rows.length === 0;
}

/** The buttons of the reactions' rows, as `console.js` dispatches clicks: each answers the admin API's reply. */
export const reactionActions = {
  resumeReaction: ({ name }) => call('POST', `/admin/reactions/${encodeURIComponent(name)}/resume`),
  retryReaction: ({ name, position, eventIndex }) => call('POST', `/admin/reactions/${encodeURIComponent(name)}/parked/${position}/${eventIndex}/retry`),
  dropReaction: ({ name, position, eventIndex }) => call('DELETE', `/admin/reactions/${encodeURIComponent(name)}/parked/${position}/${eventIndex}`),
};
