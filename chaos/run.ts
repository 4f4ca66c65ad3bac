import { readFileSync } from 'node:fs';
import { AnswerBook, type Api } from './answers.js';
import { archiveStatus, checkStore, streamLastSeq, verifyViews, waitCaughtUp, waitCopyEqual, waitReactionsSettled, type StoreCheck } from './checks.js';
import { inject, type FaultRecord } from './faults.js';
import { httpClient } from './http.js';
import { runClient, type Ack, type CommandTally } from './load.js';
import { recoveryAfter, runProbe, type ProbeSample } from './probe.js';
import { processesUnder } from '../load/procs.js';
import { judgeReactions, type FaultSpan } from './reactionChecks.js';
import {
  answersInvariant,
  archiveInvariant,
  copyInvariant,
  ordersInvariant,
  processInvariant,
  reactionOutputInvariant,
  recoveryInvariant,
  recoveryTable,
  storeInvariant,
  timersInvariant,
  verifyInvariant,
  type Invariant,
} from './report.js';
import { MIN_GAP_S, SETTLE_S, type FaultName, type PlannedFault } from './schedule.js';
import { startSubscriber, type ChaosSubscriber } from './subscriber.js';
import { World } from './world.js';

/** A chaos run's settings. */
export interface ChaosOptions {
  readonly durationS: number;
  readonly seed: number;
  readonly clients: number;
  readonly workers: number;
  readonly faults: readonly FaultName[];
  readonly schedule: readonly PlannedFault[];
  readonly runDir: string;
  readonly signal: AbortSignal;
  /** The cluster runs its embedded nats-server, as `npm start` does. */
  readonly embedded?: boolean;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    if (signal?.aborted) return r();
    const onAbort = () => (clearTimeout(timer), r());
    const timer = setTimeout(() => (signal?.removeEventListener('abort', onAbort), r()), Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Runs the load, the probe and the subscriber on a private cluster, injects the schedule,
 * then checks every invariant and stops everything it started.
 */
export async function runChaos(opts: ChaosOptions) {
  const world = new World(opts.runDir, opts.workers, opts.embedded ?? false);
  const say = (line: string) => console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  let startedAt = Date.now();
  console.log(`chaos: seed ${opts.seed}, ${opts.durationS} s${opts.embedded ? ', embedded nats-server' : ''}, faults ${opts.faults.join(',')}; schedule: ${opts.schedule.map((p) => `${p.fault}@${p.atS}s`).join(' ') || 'none'}`);
  const acks: Ack[] = [];
  const samples: ProbeSample[] = [];
  const records: FaultRecord[] = [];
  const storeChecks: StoreCheck[] = [];
  const skipped: PlannedFault[] = [];
  const tally: CommandTally = { sent: 0, acknowledged: 0, rejected: 0, retries: 0, abandoned: 0, abandonedSamples: [], reads: 0, readsOk: 0 };
  let stopped = false;
  let subscriber: ChaosSubscriber | undefined;
  try {
    await world.startNats();
    await world.startCluster();
    const ports = world.cluster.ports;
    const apiOf = (url: string): Api | undefined => {
      const port = Number(new URL(url).port);
      return port === ports.command ? 'command' : port === ports.query ? 'query' : port === ports.admin ? 'admin' : undefined;
    };
    startedAt = Date.now();
    const book = new AnswerBook(startedAt, apiOf);
    const record = book.record.bind(book);
    const http = httpClient(opts.clients, record);
    const probeHttp = httpClient(4, record);
    const { command, query, admin } = world.cluster;
    subscriber = await startSubscriber('chaos', world.natsUrl, query, admin, world.credentials()?.subscriber);
    say(`cluster up (primary ${world.cluster.pid}, nats ${world.natsPid() ?? '?'}), ${opts.clients} clients, probe and subscriber running`);
    const target = { command, query, epoch: () => world.epoch };
    const isStopped = () => stopped || opts.signal.aborted;
    const load = [
      ...Array.from({ length: opts.clients }, (_, c) => runClient(c, opts.seed, http, target, acks, tally, isStopped)),
      runProbe(probeHttp, target, acks, samples, isStopped),
    ];

    const store = {
      beforeWipe: async (oldEpoch: number, stoppedAt: number) => {
        await subscriber?.stop();
        subscriber = undefined;
        // The harness's own server on the old store (embedded mode) runs without authentication.
        // The old store's reactions ran until its cluster began to stop; the timers still pending go with it.
        const check = await checkStore(world.natsUrl, oldEpoch, acks, { endedAt: stoppedAt });
        storeChecks.push(check);
        say(`  store ${oldEpoch} checked before it goes: ${check.acknowledged} acks, ${check.missing.length} missing, ${check.duplicated.length} duplicated, ${check.misplaced.length} misplaced; ${archiveLine(check)}`);
      },
      afterSwitch: async () => {
        subscriber = await startSubscriber('chaos', world.natsUrl, query, admin, world.credentials()?.subscriber);
      },
    };
    for (const [i, plan] of opts.schedule.entries()) {
      const previous = records.at(-1);
      await sleep(Math.max(startedAt + plan.atS * 1000, previous ? startedAt + previous.endedAtMs + MIN_GAP_S * 1000 : 0) - Date.now(), opts.signal);
      if (opts.signal.aborted) break;
      // A slow restart can push the plan late; a fault must still leave the last seconds to settle.
      if (Date.now() > startedAt + (opts.durationS - SETTLE_S) * 1000) {
        say(`${plan.fault} planned at ${plan.atS} s skipped: the schedule slipped into the last ${SETTLE_S} s`);
        skipped.push(plan);
        continue;
      }
      let rec: FaultRecord;
      try {
        rec = await inject(world, plan, book, startedAt, store, startedAt + (opts.durationS - SETTLE_S) * 1000);
      } catch (err) {
        // A restart that never came back: the checks below still run, and say what that left.
        const reason = err instanceof Error ? err.message : String(err);
        records.push({ fault: plan.fault, plannedAtS: plan.atS, atMs: plan.atS * 1000, endedAtMs: Date.now() - startedAt, target: 'cluster', notes: [`the harness could not end the fault: ${reason}`] });
        say(`${plan.fault} could not be ended: ${reason}; no further faults`);
        break;
      }
      records.push(rec);
      say(
        `${rec.fault.padEnd(11)} ${rec.target}${rec.pid ? ` pid ${rec.pid}` : ''}${rec.endedAtMs > rec.atMs + 50 ? `, ended after ${((rec.endedAtMs - rec.atMs) / 1000).toFixed(1)} s` : ''}` +
          `${rec.respawnMs !== undefined ? `, back in ${(rec.respawnMs / 1000).toFixed(2)} s` : ''}${rec.notes.length ? ` (${rec.notes.join('; ')})` : ''}`,
      );
      const next = opts.schedule[i + 1];
      // The last fault is watched for up to 12 s even past --duration: a slow restart must still show its recovery.
      const until = Math.min(next ? startedAt + next.atS * 1000 : Infinity, startedAt + rec.endedAtMs + 12_000);
      let r = recoveryAfter(samples, startedAt + rec.endedAtMs);
      while ((r.commandsMs === undefined || r.lagMs === undefined) && Date.now() < until && !opts.signal.aborted) {
        await sleep(100, opts.signal);
        r = recoveryAfter(samples, startedAt + rec.endedAtMs);
      }
      say(`  recovered from ${rec.fault}: commands ok after ${ms(r.commandsMs)}, lag under 100 ms after ${ms(r.lagMs)} (so far; the table below has the final figures)`);
    }
    await sleep(startedAt + opts.durationS * 1000 - Date.now(), opts.signal);
    stopped = true;
    say(`load stopped: ${tally.acknowledged} commands acknowledged, ${tally.rejected} rejected, ${tally.abandoned} abandoned, ${tally.retries} retries, ${tally.readsOk}/${tally.reads} reads ok`);
    await Promise.race([Promise.all(load), sleep(30_000)]);
    http.close();
    probeHttp.close();
    if (opts.signal.aborted) throw new Error('interrupted');

    // The reactions are given the time to handle what the load wrote, so that an order left
    // placed by a reaction behind its checkpoint is stuck, not merely late.
    const auth = world.credentials()?.converge;
    const settleTo = await streamLastSeq(world.natsUrl, auth);
    const settled = await waitReactionsSettled(admin, settleTo, 30_000);
    say(`reactions ${settled.ok ? 'reached' : 'did not reach'} position ${settleTo} after ${(settled.waitedMs / 1000).toFixed(1)} s (${settled.reactions.map((r) => `${r.name} ${r.position} ${r.state}`).join(', ')})`);
    // The archiver's checkpoint before the read: a commit both live and archived by a record up to it was not removed as it should have been.
    const purgedThrough = (await archiveStatus(admin))?.archiver.purgedThrough;
    storeChecks.push(await checkStore(world.natsUrl, world.epoch, acks, { ...(auth ? { auth } : {}), settledTo: settleTo, ...(purgedThrough === undefined ? {} : { purgedThrough }) }));
    say(`store ${world.epoch} checked: ${archiveLine(storeChecks.at(-1)!)}`);
    const lastSeq = storeChecks.at(-1)!.lastSeq;
    const caughtUp = await waitCaughtUp(admin, lastSeq, 30_000);
    const verify = await verifyViews(admin);
    const archiveEnd = await archiveStatus(admin);
    const copy = await waitCopyEqual(query, subscriber?.copy ?? new Map(), 20_000);
    for (const [i, rec] of records.entries()) {
      const next = records[i + 1];
      Object.assign(rec, recoveryAfter(samples, startedAt + rec.endedAtMs, next ? startedAt + next.atMs : Infinity));
    }
    const copyErrors = subscriber?.errors ?? [];
    await subscriber?.stop();
    subscriber = undefined;
    await world.stop();
    const left = processesUnder(opts.runDir).map((p) => `${p.pid} ${p.cmdline.slice(0, 100)}`);
    await world.killAll();

    const spans: FaultSpan[] = records.map((r) => ({ fault: r.fault, from: startedAt + r.atMs, to: startedAt + r.endedAtMs }));
    const reactions = storeChecks.map((c) => ({ epoch: c.epoch, ...judgeReactions(c.reactions, c.progress, spans, c.endedAt) }));
    const invariants: Invariant[] = [
      storeInvariant(storeChecks),
      verifyInvariant(caughtUp, lastSeq, verify),
      archiveInvariant(storeChecks, records, archiveEnd),
      copyInvariant(copy, copyErrors),
      ordersInvariant(reactions, { ok: settled.ok, position: settleTo, waitedMs: settled.waitedMs }),
      reactionOutputInvariant(reactions),
      timersInvariant(reactions),
      recoveryInvariant(records),
      answersInvariant(book),
      processInvariant(left),
    ];
    console.log(`\n${recoveryTable(records)}\n`);
    const warnings = logSummary(world.logFile);
    if (warnings.length) console.log(`cluster log, warnings and errors by message:\n${warnings.slice(0, 12).map((w) => `  ${w.count}× [${w.level}] ${w.msg}`).join('\n')}\n`);
    for (const inv of invariants) console.log(`${inv.ok ? 'PASS' : 'FAIL'} ${inv.name}: ${inv.detail}`);
    return {
      options: { durationS: opts.durationS, seed: opts.seed, clients: opts.clients, workers: opts.workers, faults: opts.faults, embedded: opts.embedded ?? false },
      schedule: opts.schedule,
      skipped,
      faults: records,
      load: tally,
      probes: {
        count: samples.length,
        acknowledged: samples.filter((s) => s.ackAt !== undefined).length,
        seen: samples.filter((s) => s.lagMs !== undefined).length,
        // [sent, acknowledged, seen] in ms since the run started: the raw timeline behind the recovery figures.
        timeline: samples.map((s) => [s.sentAt - startedAt, s.ackAt === undefined ? null : s.ackAt - startedAt, s.seenAt === undefined ? null : s.seenAt - startedAt]),
      },
      answers: {
        allowed: Object.fromEntries(book.allowed),
        unexpected: Object.fromEntries(book.unexpected),
        nearKill: Object.fromEntries(book.nearKill),
        samples: book.samples,
        nearKillSamples: book.nearKillSamples,
      },
      stores: storeChecks.map(({ reactions: _scan, ...c }) => ({
        ...c,
        missing: c.missing.slice(0, 50),
        duplicated: c.duplicated.slice(0, 50),
        misplaced: c.misplaced.slice(0, 50),
        archive: { ...c.archive, duplicated: c.archive.duplicated.slice(0, 50), removedButLive: c.archive.removedButLive.slice(0, 50), lost: c.archive.lost.slice(0, 50) },
      })),
      archive: archiveEnd ?? null,
      reactions: reactions.map((r) => ({
        ...r,
        orders: { ...r.orders, stuck: r.orders.stuck.slice(0, 50) },
        timers: { ...r.timers, bad: r.timers.bad.slice(0, 50) },
        commands: { ...r.commands, duplicated: r.commands.duplicated.slice(0, 50) },
      })),
      settled,
      caughtUp,
      verify,
      copy: { ...copy, missing: copy.missing.slice(0, 50), extra: copy.extra.slice(0, 50), different: copy.different.slice(0, 50), errors: copyErrors },
      clusterLog: warnings,
      invariants,
    };
  } finally {
    stopped = true;
    await subscriber?.stop().catch(() => undefined);
    await world.killAll();
    world.closeLog();
  }
}

const ms = (v: number | undefined) => (v === undefined ? 'not yet' : `${(v / 1000).toFixed(2)} s`);

/** A store check's archive in one phrase. */
function archiveLine({ archive: a }: StoreCheck): string {
  return `archive ${a.commits} commits of ${a.aggregates} aggregates in ${a.records} records, ${a.copiedNotRemoved} copied and not yet removed, ${a.duplicated.length} archived twice, ${a.removedButLive.length} live though removed, ${a.lost.length} in neither`;
}

/** The cluster's warn and error log lines, counted by message, most frequent first. */
function logSummary(file: string): Array<{ level: string; msg: string; count: number; first: string }> {
  const counts = new Map<string, { level: string; msg: string; count: number; first: string }>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    let entry: { level?: number; msg?: string; err?: { message?: string } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      // The primary's one plain line with its addresses is for a person, not a fault.
      if (!line.trim() || line.startsWith('converge: commands ')) continue;
      entry = { level: 50, msg: line.trim().slice(0, 200) };
    }
    if ((entry.level ?? 0) < 40) continue;
    const level = (entry.level ?? 0) >= 50 ? 'error' : 'warn';
    const msg = `${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(0, 240);
    // Partitions, pids and positions vary line by line; grouping without them shows the kinds of trouble.
    const key = `${level} ${msg.replace(/\d+/g, 'N')}`;
    const seen = counts.get(key);
    if (seen) seen.count++;
    else counts.set(key, { level, msg: msg.replace(/\d+/g, 'N'), count: 1, first: line.slice(0, 600) });
  }
  return [...counts.values()].sort((a, b) => b.count - a.count);
}
