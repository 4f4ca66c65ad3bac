import type { StreamCounts } from './benchNats.js';
import type { StreamCopied } from './streamCopy.js';

/** nats-server's memory and what `EVENTS` and `NOTIFY` hold, at one moment. */
export interface ServerSnapshot {
  readonly rssMb: number;
  readonly peakMb: number;
  readonly events: StreamCounts;
  readonly notify: StreamCounts;
}

/** Orders placed through `dispatch` for a fixed time, and the CPU nats-server and this process used meanwhile (% of one core). */
export interface Burst {
  readonly accepted: number;
  readonly refused: number;
  readonly failed: number;
  readonly perS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly natsCpuPct: number;
  readonly convergeCpuPct: number;
}

export interface ArchiveRate {
  readonly seconds: number;
  readonly aggregatesPerS: number;
  readonly commitsPerS: number;
}

/** A position a feed found missing from `EVENTS` and the archive, and what it was once looked up again. */
export interface FeedGap {
  readonly position: number;
  readonly subject: string | null;
  /** Whether the view of its order has folded it by the end of the run. */
  readonly folded: boolean | null;
}

/** Views made from nothing, until `settled()`. */
export interface Rebuilt {
  readonly ms: number;
  readonly commits: number;
  readonly perS: number;
  readonly notifierMs: number;
  readonly notifySubjectsAfter: number;
  readonly gaps: number;
  readonly slowConsumers: number;
}

/** A rebuild given up after making no progress. */
export interface RebuildFailed {
  readonly failed: string;
  readonly ms: number;
  readonly position: number;
  readonly gaps: number;
  readonly slowConsumers: number;
}

export interface RunFigures {
  readonly mode: 'without' | 'with';
  readonly fill: { readonly commits: number; readonly ms: number; readonly perS: number; readonly rssMb: number };
  readonly fold: { readonly commits: number; readonly ms: number; readonly perS: number; readonly eventsSubjects: number; readonly notifySubjects: number };
  readonly commands?: {
    readonly paused: Burst;
    readonly working: Burst;
    readonly ratio: number;
    /** Subjects the archiver removed from `EVENTS` during the second burst. */
    readonly removedMeanwhile: number;
    readonly backlogAtEnd: number;
    /** A third burst once the archive is done (with archiving) or after the second (without): the archiver has nothing to do. */
    readonly idle?: Burst;
    readonly idleRatio?: number;
  };
  readonly archive?: ArchiveRate & { readonly aggregates: number; readonly commits: number; readonly mb: number; readonly afterBursts: ArchiveRate };
  readonly gaps: readonly FeedGap[];
  readonly afterRun: ServerSnapshot;
  readonly reference?: { readonly copied: Record<string, StreamCopied>; readonly afterFill: ServerSnapshot; readonly restartMs: number; readonly afterRestart: ServerSnapshot };
  readonly restart: { readonly stopMs: number; readonly exit: string; readonly startMs: number };
  readonly afterRestart: ServerSnapshot;
  /** Times nats-server closed a client as a slow consumer during the run (its log). */
  readonly slowConsumers: number;
  readonly rebuild?: Rebuilt | RebuildFailed;
}

const fmt = (n: number | undefined) => (n === undefined ? '–' : Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));
const burst = (b: Burst | undefined) => (b ? `${fmt(b.perS)}/s, p99 ${b.p99Ms.toFixed(0)} ms` : '–');
const cpu = (b: Burst | undefined) => (b ? `${fmt(b.natsCpuPct)}% / ${fmt(b.convergeCpuPct)}%` : '–');

/** Prints rows of a label and one cell per column, aligned. */
function printColumns(title: string, columns: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = [Math.max(...rows.map((r) => r[0]!.length)), ...columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i + 1] ?? '').length)))];
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i]!))).join('   ')}`;
  console.log(`\n${title}`);
  console.log(line(['', ...columns]));
  for (const r of rows) console.log(line(r));
}

/** The summary table: the run without archiving, the run with it, and the live set alone. */
export function printSummary(title: string, w: RunFigures | undefined, a: RunFigures | undefined): void {
  const ref = a?.reference;
  const row = (label: string, pick: (f: RunFigures) => string | undefined, refCell = '–') => [label, w ? (pick(w) ?? '–') : '–', a ? (pick(a) ?? '–') : '–', refCell];
  const n = (pick: (f: RunFigures) => number | undefined) => (f: RunFigures) => fmt(pick(f));
  const subjects = (s: ServerSnapshot | undefined) => (s ? `${fmt(s.events.subjects)} / ${fmt(s.notify.subjects)}` : '–');
  const stored = (s: ServerSnapshot | undefined) => (s ? `${fmt(s.events.messages)}, ${fmt(s.events.deleted)}, ${fmt(s.events.mb)}` : '–');
  const memory = (s: ServerSnapshot | undefined) => (s ? `${fmt(s.rssMb)} (${fmt(s.peakMb)})` : '–');
  const rows = [
    row('fill: commits straight to EVENTS, per s', (f) => `${fmt(f.fill.commits)}, ${fmt(f.fill.perS)}/s`),
    row('fold from nothing (views, notifier): commits/s', n((f) => f.fold.perS)),
    row('orders/s, archiver paused, archive empty', (f) => burst(f.commands?.paused)),
    row('orders/s, archiver resumed, at work', (f) => burst(f.commands?.working)),
    row('  ratio resumed ÷ paused', (f) => f.commands?.ratio.toFixed(2)),
    row('  CPU nats-server / converge, paused', (f) => cpu(f.commands?.paused)),
    row('  CPU nats-server / converge, resumed', (f) => cpu(f.commands?.working)),
    row('  subjects removed from EVENTS during it', n((f) => f.commands?.removedMeanwhile)),
    row('orders/s, third burst: archiver idle, archive done', (f) => burst(f.commands?.idle)),
    row('  ratio idle ÷ paused', (f) => f.commands?.idleRatio?.toFixed(2)),
    row('  CPU nats-server / converge, idle', (f) => cpu(f.commands?.idle)),
    row('archive: aggregates/s, resume → all removed', n((f) => f.archive?.aggregatesPerS)),
    row('archive: commits/s', n((f) => f.archive?.commitsPerS)),
    row('archive: aggregates/s after the bursts', n((f) => f.archive?.afterBursts.aggregatesPerS)),
    row('archive: s; MB of archived commits', (f) => (f.archive ? `${f.archive.seconds.toFixed(1)}; ${fmt(f.archive.mb)}` : undefined)),
    row('feed gaps (a live position skipped, consumer recreated)', (f) => `${f.gaps.length}`),
    row('EVENTS / NOTIFY subjects after the fold', (f) => `${fmt(f.fold.eventsSubjects)} / ${fmt(f.fold.notifySubjects)}`),
    row('EVENTS / NOTIFY subjects after the run', (f) => subjects(f.afterRun), subjects(ref?.afterFill)),
    row('EVENTS messages, removed, MB after the run', (f) => stored(f.afterRun), stored(ref?.afterFill)),
    row('nats-server RSS after the run, MB (peak)', (f) => memory(f.afterRun), memory(ref?.afterFill)),
    row('nats-server restart: spawn → EVENTS answers, ms', n((f) => f.restart.startMs), fmt(ref?.restartMs)),
    row('nats-server RSS after the restart, MB', n((f) => f.afterRestart.rssMb), fmt(ref?.afterRestart.rssMb)),
    row('EVENTS / NOTIFY subjects after the restart', (f) => subjects(f.afterRestart), subjects(ref?.afterRestart)),
    row('nats-server slow-consumer disconnects, run', (f) => `${f.slowConsumers}`),
    row('rebuild from nothing: commits/s to settled()', (f) => (f.rebuild ? ('failed' in f.rebuild ? `failed after ${(f.rebuild.ms / 1000).toFixed(0)} s` : fmt(f.rebuild.perS)) : undefined)),
    row('  commits; s', (f) => (f.rebuild && !('failed' in f.rebuild) ? `${fmt(f.rebuild.commits)}; ${(f.rebuild.ms / 1000).toFixed(1)}` : undefined)),
    row('  NOTIFY subjects once the notifier caught up', (f) => (f.rebuild && !('failed' in f.rebuild) ? fmt(f.rebuild.notifySubjectsAfter) : undefined)),
    row('  feed gaps; slow-consumer disconnects', (f) => (f.rebuild ? `${f.rebuild.gaps}; ${f.rebuild.slowConsumers}` : undefined)),
  ];
  printColumns(title, ['without archiving', 'with archiving', 'live set alone'], rows);
  if (a && ref) {
    const ratio = a.afterRestart.rssMb / ref.afterRestart.rssMb;
    console.log(`\n  goal, nats-server's RSS with archiving within 10% of the live set's (both after a restart): ${a.afterRestart.rssMb} / ${ref.afterRestart.rssMb} MB = ${ratio.toFixed(2)}, ${ratio <= 1.1 ? 'met' : 'not met'}`);
    console.log(`  before the restarts: ${a.afterRun.rssMb} / ${ref.afterFill.rssMb} MB = ${(a.afterRun.rssMb / ref.afterFill.rssMb).toFixed(2)} (nats-server's RSS drops for removed subjects only when it restarts)`);
  }
  for (const [stream, c] of Object.entries(ref?.copied ?? {})) if (c.copied < c.expected) console.log(`  the live set's copy lacks ${c.expected - c.copied} of ${c.expected} messages of ${stream}`);
  for (const f of [w, a]) if (f?.rebuild && 'failed' in f.rebuild) console.log(`  rebuild ${f.mode} archiving failed: ${f.rebuild.failed}`);
  for (const f of [w, a]) for (const g of f?.gaps ?? []) console.log(`  feed gap in the run ${f!.mode} archiving: position ${g.position} (${g.subject ?? 'gone'}), folded by the end: ${g.folded}`);
}
