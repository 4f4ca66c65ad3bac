import type { AddedSubscriber, SubscriberInfo } from '../integration/subscribers.js';
import type { ArchiveStatus, ReactionStatus, RebuildStatus } from '../read/viewsStatus.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import type { ParkedEvent } from '../read/viewStore.js';
import type { VerifyReport } from '../read/verify.js';
import type { PartitionOwners } from '../write/leases.js';

/** What `converge status` shows: the views status, the parked events and the subscribers. */
export interface StatusSummary {
  readonly views: ViewsStatus;
  readonly parked: readonly ParkedEvent[];
  /** Or why they could not be read (NATS away). */
  readonly subscribers: readonly SubscriberInfo[] | { readonly unavailable: string };
  /** Who runs each partition, or why it could not be read. */
  readonly partitions: PartitionOwners | { readonly unavailable: string };
}

/** Milliseconds as an operator reads them: `850 ms`, `12.5 s`, `3 min 20 s`. */
export function duration(ms: number | null): string {
  if (ms === null) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `1200/5000 (24%), 350/s, ETA 10.9 s`: where a rebuild is. */
export function progressLine(r: RebuildStatus): string {
  const pct = r.target > 0 ? Math.floor((100 * r.position) / r.target) : 100;
  const rate = r.ratePerS === null ? '' : `, ${Math.round(r.ratePerS)}/s`;
  const health = r.state === 'running' ? '' : `, ${r.state}${r.error ? `: ${r.error}` : ''}`;
  return `${r.position}/${r.target} (${pct}%)${rate}, ETA ${duration(r.etaMs)}${health}`;
}

function table(rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** One screen: the event store, each projection, the notifier, parked events and subscribers. */
export function statusScreen({ views, parked, subscribers, partitions }: StatusSummary): string {
  const store = views.eventStore;
  const lines = [`EVENTS: ${store.reachable ? `last position ${store.lastPosition}` : 'NOT reachable'}   (status at ${views.at})`];
  if (store.refusesWrites) lines.push(`EVENTS REFUSES WRITES since ${store.refusesWrites.since}: ${store.refusesWrites.reason}`);
  lines.push('');
  const rows = [['projection', 'state', 'gen', 'position', 'lag', 'lag ms', 'parked', 'note']];
  for (const p of views.projections) {
    const note = p.rebuild ? `rebuilding: ${progressLine(p.rebuild)}` : p.error ? p.error : p.lastRebuildError ? `last rebuild failed: ${p.lastRebuildError}` : '';
    rows.push([p.name, p.state, String(p.generation), String(p.position), String(p.lagEvents), p.lagMs === null ? '?' : String(p.lagMs), String(p.parked), note]);
  }
  const n = views.notifier;
  // A read replica runs no notifier.
  if (n) rows.push(['(notifier)', n.state, '', String(n.position), String(n.lagEvents), '', '', n.error ?? '']);
  lines.push(...table(rows, new Set([2, 3, 4, 5, 6])), '');
  if (views.reactions && views.reactions.length > 0) lines.push(...reactionLines(views.reactions, views.reactionsHolder ?? null), '');
  if (views.archive) lines.push(archiveLine(views.archive));
  const byProjection = new Map<string, number>();
  for (const p of parked) byProjection.set(p.projection, (byProjection.get(p.projection) ?? 0) + 1);
  lines.push(`parked events: ${parked.length}${parked.length ? ` (${[...byProjection].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
  lines.push(partitionsLine(partitions));
  if ('unavailable' in subscribers) lines.push(`subscribers: unavailable (${subscribers.unavailable})`);
  else if (subscribers.length === 0) lines.push('subscribers: none');
  else {
    lines.push('subscribers:');
    for (const s of subscribers) {
      lines.push(`  ${s.name}: ${s.pending} pending, ${s.ackPending} unacknowledged, ${s.replayPending} re-published pending, acknowledged up to ${s.ackedSequence}`);
    }
  }
  return lines.join('\n');
}

/** The reactors and processes as `converge status` and `converge reactions` show them: a table, then who runs them. */
export function reactionLines(reactions: readonly ReactionStatus[], holder: string | null): string[] {
  const rows = [['reaction', 'kind', 'state', 'position', 'lag', 'parked', 'open', 'timers', 'next timer due', 'note']];
  for (const r of reactions) {
    const i = r.instances;
    rows.push([r.name, r.kind, r.state, String(r.position), String(r.lagEvents), String(r.parked), i ? String(i.open) : '', i ? String(i.timersPending) : '', i?.nextTimerDue ?? '', r.error ?? '']);
  }
  return [...table(rows, new Set([3, 4, 5, 6, 7])), holder ? `reactions run by ${holder}` : 'reactions: nobody holds their lease yet'];
}

/** The archive in one line, as `converge status` shows it (`converge archive` says more). */
export function archiveLine(a: ArchiveStatus): string {
  const r = a.archiver;
  return `archive: ${a.liveAggregates ?? '?'} live, ${a.archivedAggregates} archived (${a.archivedCommits} commits, ${(a.archiveBytes / 1024).toFixed(1)} KiB); archiver ${r.state}${r.holder ? ` (run by ${r.holder})` : ''}, ${r.due} due${r.error ? `; last error: ${r.error}` : ''}`;
}

/** The archive as `converge archive` shows it: what is live and archived, then the archiver. */
export function archiveLines(a: ArchiveStatus): string[] {
  const r = a.archiver;
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  return [
    `aggregates: ${a.liveAggregates ?? '?'} live in EVENTS, ${a.archivedAggregates} archived (${a.archivedCommits} commits, ${kib(a.archiveBytes)}); index at record ${a.indexPosition}`,
    `archiver: ${r.state}${r.holder ? ` (run by ${r.holder})` : ' (nobody holds its lease yet)'}, ${r.due} due, oldest due for ${r.lagMs} ms, ${r.archived} archived here, removed through record ${r.purgedThrough}, last round ${r.lastRoundAt ?? 'never'}${r.error ? `; last error: ${r.error}` : ''}`,
  ];
}

/** What `converge subscribers add` made: the subscriber, then each of its consumers. */
export function subscriberAddedLines(added: AddedSubscriber): string[] {
  const start = (deliver: string) => (deliver === 'all' ? 'every message the stream holds for it, then new ones' : 'messages from now on');
  return [
    `added subscriber ${added.name} (${added.pending} notices pending)`,
    ...added.consumers.map((c) => `  ${c.stream}: consumer ${c.name}, subjects ${c.filter}, delivering ${start(c.deliver)}`),
  ];
}

/** `partitions: 64 by lease: host-a.0 36, host-b.0 28` (and the unowned ones, if any). */
export function partitionsLine(p: PartitionOwners | { readonly unavailable: string }): string {
  if ('unavailable' in p) return `partitions: unavailable (${p.unavailable})`;
  const owners = Object.entries(p.owners).sort(([a], [b]) => a.localeCompare(b)).map(([owner, ps]) => `${owner} ${ps.length}`);
  const unowned = p.unowned.length > 0 ? `; unowned: ${p.unowned.join(',')}` : '';
  return `partitions: ${p.partitions} ${p.ownership === 'leases' ? 'by lease' : 'static'}: ${owners.join(', ') || 'none owned'}${unowned}`;
}

/** One line per projection, then the checkpoint problems and the differences listed. */
export function verifyLines(report: VerifyReport): string[] {
  const lines: string[] = [];
  for (const p of report.projections) {
    const state = p.differenceCount === 0 && p.indexDifferences === 0 ? 'ok' : 'DIFFERS';
    lines.push(
      `${p.name}: ${state} at position ${p.position} of ${report.streamLastPosition}, ${p.checked} of ${p.documents} documents checked, ` +
        `${p.differenceCount} document differences, ${p.indexDifferences} index differences`,
    );
  }
  lines.push(`checkpoints: ${report.checkpoints.ok ? 'ok' : report.checkpoints.problems.join('; ')}`);
  // An admin API older than these checks answers without them.
  const { histories, archive } = report as Partial<Pick<VerifyReport, 'histories' | 'archive'>>;
  if (histories) lines.push(`histories: ${histories.ok ? `ok (${histories.aggregates} aggregates)` : `${histories.problemCount} problems: ${histories.problems.join('; ')}`}`);
  if (archive) {
    const counts = `${archive.records} records, ${archive.commits} commits, ${archive.copiedNotRemoved} copied and not yet removed`;
    lines.push(`archive: ${archive.ok ? `ok (${counts})` : `${archive.problemCount} problems (${counts}): ${archive.problems.join('; ')}`}`);
  }
  for (const p of report.projections) {
    for (const d of p.differences) lines.push(`  ${p.name} ${d.kind} ${JSON.stringify(d.key)}`);
  }
  lines.push(report.ok ? 'verify: ok' : 'verify: NOT ok');
  return lines;
}
