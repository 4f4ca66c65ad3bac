import type { AnswerBook } from './answers.js';
import type { StoreCheck } from './checks.js';
import type { FaultRecord } from './faults.js';
import { FIRE_WITHIN_MS, type ReactionVerdict } from './reactionChecks.js';

/** One invariant's verdict, printed as one line. */
export interface Invariant {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Recovery promised after any single fault (ms after the fault ends). */
export const COMMANDS_WITHIN_MS = 5000;
export const LAG_WITHIN_MS = 10_000;

const fmt = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`);

/** The per-fault recovery table. */
export function recoveryTable(faults: readonly FaultRecord[]): string {
  const rows = faults.map((f) =>
    [`${(f.atMs / 1000).toFixed(1)} s`, f.fault, f.target, String(f.pid ?? '—'), fmt(f.endedAtMs - f.atMs), fmt(f.respawnMs), fmt(f.commandsMs), fmt(f.lagMs)].map(
      (c, i) => c.padEnd([8, 12, 16, 8, 9, 9, 12, 12][i]!),
    ).join(' '),
  );
  return ['at       fault        target           pid      held      respawn   commands ok  lag <100 ms', ...rows].join('\n');
}

/** Every acknowledged command once in its store, at its position; no acknowledgement at all fails too. */
export function storeInvariant(checks: readonly StoreCheck[]): Invariant {
  const acked = checks.reduce((a, c) => a + c.acknowledged, 0);
  const bad = (k: 'missing' | 'duplicated' | 'misplaced') => checks.flatMap((c) => c[k].map((x) => `epoch ${c.epoch}: ${x}`));
  const [missing, duplicated, misplaced] = [bad('missing'), bad('duplicated'), bad('misplaced')];
  const ok = acked > 0 && missing.length + duplicated.length + misplaced.length === 0;
  const samples = [...missing, ...duplicated, ...misplaced].slice(0, 3).join('; ');
  return {
    name: 'acknowledged commands are in EVENTS or its archive exactly once, at their position',
    ok,
    detail: `${acked} acknowledged over ${checks.length} store(s) (last seqs ${checks.map((c) => c.lastSeq).join(', ')}): ${missing.length} missing, ${duplicated.length} duplicated, ${misplaced.length} misplaced${acked === 0 ? '; no command was acknowledged at all' : ''}${samples ? ` — e.g. ${samples}` : ''}`,
  };
}

/** Each fault recovered within the promised bounds, counted from when it ended. */
export function recoveryInvariant(faults: readonly FaultRecord[]): Invariant {
  const late = faults.filter((f) => f.commandsMs === undefined || f.commandsMs > COMMANDS_WITHIN_MS || f.lagMs === undefined || f.lagMs > LAG_WITHIN_MS);
  return {
    name: `after each fault commands succeed within ${COMMANDS_WITHIN_MS / 1000} s and lag is under 100 ms within ${LAG_WITHIN_MS / 1000} s`,
    ok: faults.length > 0 && late.length === 0,
    detail:
      faults.length === 0
        ? 'no fault was injected'
        : `${faults.length} faults, ${late.length} late: ${late.map((f) => `${f.fault}@${(f.atMs / 1000).toFixed(1)}s commands ${fmt(f.commandsMs)} lag ${fmt(f.lagMs)}`).join('; ') || 'none'}`,
  };
}

/** Answers within the contract; those outside it near a kill are reported but do not fail it. */
export function answersInvariant(book: AnswerBook): Invariant {
  const strict = book.total(book.unexpected);
  const near = book.total(book.nearKill);
  const list = (m: Map<string, number>) => [...m].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';
  return {
    name: 'every answer is 2xx, 4xx with a code, 503 with Retry-After or outcome_unknown',
    ok: strict === 0,
    detail: `${book.total(book.allowed)} within the contract; ${strict} outside it (${list(book.unexpected)}); ${near} more within 1 s of a kill of the serving process (${list(book.nearKill)})`,
  };
}

interface VerifyBody {
  ok?: boolean;
  streamLastPosition?: number;
  projections?: Array<{ name: string; position: number; documents: number; checked: number; differenceCount?: number; differences?: unknown[]; indexDifferences?: unknown }>;
  checkpoints?: { ok: boolean; problems: string[] };
  histories?: { ok: boolean; aggregates: number; problems: string[] };
  archive?: { ok: boolean; records: number; commits: number; copiedNotRemoved: number; problems: string[] };
}

/** Views against a from-scratch rebuild, once every projection has reached the stream's end. */
export function verifyInvariant(
  caughtUp: { ok: boolean; projections: Array<{ name: string; position: number; state: string }>; waitedMs: number },
  lastSeq: number,
  verify: { status: number; body: unknown },
): Invariant {
  const name = 'every view equals a from-scratch rebuild (POST /admin/verify)';
  const positions = caughtUp.projections.map((p) => `${p.name} ${p.position} ${p.state}`).join(', ') || 'no projections listed';
  const lag = caughtUp.ok ? '' : `projections did not reach the stream's last sequence ${lastSeq} within ${(caughtUp.waitedMs / 1000).toFixed(0)} s (${positions}); `;
  if (verify.status !== 200) {
    const body = typeof verify.body === 'string' ? verify.body : JSON.stringify(verify.body);
    return { name, ok: false, detail: `${lag}POST /admin/verify answered ${verify.status || 'nothing'}${verify.status === 404 ? ' (the endpoint does not exist yet)' : ''}: ${body.slice(0, 200)}` };
  }
  const body = verify.body as VerifyBody;
  const projections = (body.projections ?? [])
    .map((p) => `${p.name}: ${p.checked}/${p.documents} checked, ${p.differenceCount ?? p.differences?.length ?? '?'} differences, index ${JSON.stringify(p.indexDifferences ?? '?')}${firstDifferences(p.differences)}`)
    .join('; ');
  const checkpoints = body.checkpoints ? (body.checkpoints.ok ? 'checkpoints ok' : `checkpoints: ${body.checkpoints.problems.join('; ')}`) : 'no checkpoints report';
  const histories = body.histories ? (body.histories.ok ? `histories ok (${body.histories.aggregates} aggregates)` : `histories: ${body.histories.problems.slice(0, 3).join('; ')}`) : 'no histories report';
  const archive = body.archive
    ? `archive ${body.archive.ok ? 'ok' : `NOT ok: ${body.archive.problems.slice(0, 3).join('; ')}`} (${body.archive.records} records, ${body.archive.commits} commits, ${body.archive.copiedNotRemoved} copied and not yet removed)`
    : 'no archive report';
  return {
    name,
    ok: caughtUp.ok && body.ok === true && body.checkpoints?.ok !== false,
    detail: `${lag}verify ok=${String(body.ok)} at stream position ${body.streamLastPosition ?? '?'}; ${projections}; ${checkpoints}; ${histories}; ${archive}`,
  };
}

/** The first differences a view has from its rebuild, each cut short, so that a failed run says which documents and how. */
function firstDifferences(differences: readonly unknown[] | undefined): string {
  if (!differences?.length) return '';
  return ` (first: ${differences.slice(0, 2).map((d) => JSON.stringify(d).slice(0, 400)).join('; ')})`;
}

/** The subscriber's copy against the views' full import. */
export function copyInvariant(diff: { views: number; copy: number; missing: string[]; extra: string[]; different: string[]; waitedMs: number }, errors: readonly string[]): Invariant {
  const ok = diff.views >= 0 && diff.missing.length + diff.extra.length + diff.different.length === 0;
  const ids = (l: string[]) => (l.length ? ` (${l.slice(0, 3).join(', ')}${l.length > 3 ? ', …' : ''})` : '');
  return {
    name: "the subscriber's copy equals the views (GET /import/shops)",
    ok,
    detail: `${diff.copy} shops in the copy, ${diff.views} in the views after ${(diff.waitedMs / 1000).toFixed(1)} s: ${diff.missing.length} missing${ids(diff.missing)}, ${diff.extra.length} extra${ids(diff.extra)}, ${diff.different.length} different${ids(diff.different)}${ok || errors.length === 0 ? '' : `; last subscriber error: ${errors.at(-1)}`}`,
  };
}

/** Nothing of the run still alive after it stopped what it started. */
export function processInvariant(left: readonly string[]): Invariant {
  return {
    name: 'no process of the run is left running after it stopped the cluster',
    ok: left.length === 0,
    detail: left.length === 0 ? 'none found in /proc' : `${left.length} left (killed now): ${left.join('; ')}`,
  };
}

const sum = (items: readonly number[]) => items.reduce((a, b) => a + b, 0);
const firstFew = (items: readonly string[]) => (items.length ? ` — e.g. ${items.slice(0, 3).join('; ')}` : '');

/** Every order placed ends accepted, rejected, cancelled or delivered, or waits on its accept timer (each store epoch on its own). */
export function ordersInvariant(epochs: readonly ReactionVerdict[], settled: { ok: boolean; position: number; waitedMs: number }): Invariant {
  const total = (k: 'orders' | 'accepted' | 'rejected' | 'cancelled' | 'delivered' | 'timerPending' | 'owed' | 'reviewsRecorded') => sum(epochs.map((e) => e.orders[k]));
  const stuck = epochs.flatMap((e) => e.orders.stuck.map((s) => `epoch ${e.epoch}: ${s}`));
  const parked = epochs.flatMap((e) => e.orders.parked.map((p) => `epoch ${e.epoch}: ${p}`));
  const reasons = new Map<string, number>();
  for (const e of epochs) for (const [reason, n] of Object.entries(e.orders.rejections)) reasons.set(reason, (reasons.get(reason) ?? 0) + n);
  const why = [...reasons].map(([reason, n]) => `${n} ${reason}`).join(', ');
  return {
    name: 'every order placed ends accepted, rejected, cancelled or delivered, or has its accept timer pending',
    ok: total('orders') > 0 && stuck.length === 0,
    detail:
      `${total('orders')} orders over ${epochs.length} store(s): ${total('accepted')} accepted, ${total('rejected')} rejected${why ? ` (${why})` : ''}, ${total('cancelled')} cancelled, ` +
      `${total('delivered')} delivered, ${total('timerPending')} with the timer pending, ${total('owed')} owed by a reaction past its checkpoint, ${stuck.length} stuck; ` +
      `${total('reviewsRecorded')} reviews recorded on their orders; ${parked.length} parked inputs${parked.length ? ` (${parked.slice(0, 3).join('; ')})` : ''}` +
      `${settled.ok ? '' : `; the reactions did not reach position ${settled.position} within ${(settled.waitedMs / 1000).toFixed(0)} s of the load's end`}` +
      `${total('orders') === 0 ? '; no order was placed at all' : ''}${firstFew(stuck)}`,
  };
}

/** No command a process or reactor sent, and no input a process instance handled, landed twice in one aggregate instance. */
export function reactionOutputInvariant(epochs: readonly ReactionVerdict[]): Invariant {
  const duplicated = epochs.flatMap((e) => e.commands.duplicated.map((d) => `epoch ${e.epoch}: ${d}`));
  const [process, reactor] = [sum(epochs.map((e) => e.commands.process)), sum(epochs.map((e) => e.commands.reactor))];
  return {
    name: 'no process or reactor output is applied twice (p./r. command ids, process inputs)',
    ok: duplicated.length === 0 && process > 0 && reactor > 0,
    detail: `${process} process commands and ${reactor} reactor commands applied over ${epochs.length} store(s), ${duplicated.length} command ids or inputs in an aggregate twice${process === 0 || reactor === 0 ? `; no ${process === 0 ? 'process' : 'reactor'} command was applied at all` : ''}${firstFew(duplicated)}`,
  };
}

/** Every timer that fell due fired once, within FIRE_WITHIN_MS of its due time or of the end of the fault that covered it. */
export function timersInvariant(epochs: readonly ReactionVerdict[]): Invariant {
  const total = (k: 'scheduled' | 'fired' | 'duringFaults' | 'cancelled' | 'pendingAtEnd') => sum(epochs.map((e) => e.timers[k]));
  const bad = epochs.flatMap((e) => e.timers.bad.map((b) => `epoch ${e.epoch}: ${b}`));
  const worst = epochs.map((e) => e.timers.worst).reduce((a, b) => (b && (!a || b.lateMs > a.lateMs) ? b : a), undefined);
  return {
    name: `every timer that fell due fired once, within ${FIRE_WITHIN_MS / 1000} s of its due time or of the end of the fault covering it`,
    ok: bad.length === 0 && total('fired') > 0,
    detail:
      `${total('scheduled')} timers scheduled over ${epochs.length} store(s): ${total('fired')} fired (${total('duringFaults')} due during a fault), ${total('cancelled')} cancelled in time, ` +
      `${total('pendingAtEnd')} pending with their time not yet up at the end; worst lateness ${worst ? `${(worst.lateMs / 1000).toFixed(2)} s (${worst.timer})` : '—'}; ${bad.length} wrong${total('fired') === 0 ? '; no timer fired at all' : ''}${firstFew(bad)}`,
  };
}

/**
 * The archive across the run: it moved finished aggregates out of `EVENTS` (else it was not
 * tested at all), every position is live or archived, none is archived twice or still live
 * after the archiver removed it, each `archiver` fault caught a round under way, and the
 * round it interrupted was finished (the archiver's checkpoint at the end is past the record
 * that was last when the killed process came back).
 */
export function archiveInvariant(checks: readonly StoreCheck[], faults: readonly FaultRecord[], end: { archivedCommits: number; archiver: { purgedThrough: number; state: string; error?: string } } | undefined): Invariant {
  const total = (k: 'records' | 'commits' | 'aggregates' | 'copiedNotRemoved') => sum(checks.map((c) => c.archive[k]));
  const bad = (k: 'duplicated' | 'removedButLive' | 'lost') => checks.flatMap((c) => c.archive[k].map((x) => `epoch ${c.epoch}: ${x}`));
  const [duplicated, removedButLive, lost] = [bad('duplicated'), bad('removedButLive'), bad('lost')];
  const archiverFaults = faults.filter((f) => f.fault === 'archiver');
  // A fault whose wait the run's end cut short and that saw no round is reported, not failed.
  const missed = archiverFaults.filter((f) => !f.archive?.caughtRound && !f.archive?.cutShort);
  const cut = archiverFaults.filter((f) => f.archive && !f.archive.caughtRound && f.archive.cutShort);
  const lastEpoch = checks.at(-1)?.epoch;
  const unfinished = archiverFaults.filter((f) => f.archive && f.archive.epoch === lastEpoch && f.archive.record > 0 && (end?.archiver.purgedThrough ?? 0) < f.archive.record);
  const empty = total('commits') === 0;
  const at = (f: FaultRecord) => `${f.fault}@${(f.atMs / 1000).toFixed(1)}s`;
  const faultPart =
    archiverFaults.length === 0
      ? 'no archiver fault'
      : `${archiverFaults.length} archiver faults, ${archiverFaults.filter((f) => f.archive?.caughtRound).length} mid-round (${archiverFaults.map((f) => `${f.target.split(' ')[0]} ${f.archive?.afterRecordMs === undefined ? 'with no round seen' : `${f.archive.afterRecordMs} ms after a record`}`).join(', ')})` +
        `${missed.length ? `; ${missed.map(at).join(', ')} saw no archive record appended in the whole wait (the archiver did no round while orders finished: see the fault's note), so tested nothing of the archive` : ''}` +
        `${cut.length ? `; ${cut.map(at).join(', ')} saw no record before the run's last seconds and killed anyway (not counted)` : ''}` +
        `${unfinished.length ? `; the round interrupted by ${unfinished.map((f) => `${at(f)} (record ${f.archive!.record})`).join(', ')} was not finished: the archiver's checkpoint at the end is ${end ? end.archiver.purgedThrough : 'unknown (GET /admin/archive did not answer)'}` : ''}`;
  return {
    name: 'the archive moved finished aggregates out of EVENTS, each position live or archived once, and the archiver finished the rounds the faults broke',
    ok: !empty && duplicated.length + removedButLive.length + lost.length === 0 && missed.length === 0 && unfinished.length === 0,
    detail:
      `${total('commits')} commits of ${total('aggregates')} aggregates in ${total('records')} records over ${checks.length} store(s), ${total('copiedNotRemoved')} copied and not yet removed at the check` +
      `${end ? ` (GET /admin/archive at the end: ${end.archivedCommits} commits, purged through ${end.archiver.purgedThrough}, ${end.archiver.state}${end.archiver.error ? `, last error: ${end.archiver.error}` : ''})` : ''}; ` +
      `${duplicated.length} positions archived twice, ${removedButLive.length} live though removed, ${lost.length} in neither EVENTS nor the archive; ${faultPart}` +
      `${empty ? '; the archive holds nothing: no finished aggregate was archived during the run, so the archive was not tested' : ''}${firstFew([...duplicated, ...removedButLive, ...lost])}`,
  };
}
