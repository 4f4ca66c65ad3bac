// The console's archive: what is live and archived, the archive's size and the archiver's
// progress and lag, from the status stream, with its pause and resume.
import { call } from './api.js';

const $ = (selector) => document.querySelector(selector);

/** Draws the archive of a status; the section stays hidden for an app that archives nothing. */
export function renderArchive(status) {
  const a = status.archive;
  $('#archive').hidden = !a;
  if (!a) return;
  const r = a.archiver;
  const set = (id, value) => ($(`#archive [data-field=${id}]`).textContent = value === null || value === undefined ? '–' : String(value));
  set('live', a.liveAggregates);
  set('archived', a.archivedAggregates);
  set('commits', a.archivedCommits);
  set('size', `${(a.archiveBytes / 1024).toFixed(1)} KiB`);
  set('state', r.state);
  set('holder', r.holder ?? 'nobody yet');
  set('due', r.due);
  set('lag', `${r.lagMs} ms`);
  set('done', r.archived);
  set('last', r.lastRoundAt ? new Date(r.lastRoundAt).toLocaleString() : 'never');
  $('#archive').dataset.state = r.state;
  $('#archive-error').textContent = r.error ?? '';
  const paused = r.state === 'paused';
  $('#archive button').textContent = paused ? 'Resume' : 'Pause';
  $('#archive button').dataset.action = paused ? 'resumeArchiver' : 'pauseArchiver';
}

/** The archive's buttons, as `console.js` dispatches clicks: each answers the admin API's reply. */
export const archiveActions = {
  pauseArchiver: () => call('POST', '/admin/archive/pause'),
  resumeArchiver: () => call('POST', '/admin/archive/resume'),
};
