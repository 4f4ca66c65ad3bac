/**
 * The archive (docs/architecture.md, "Archive"): what archiving does to nats-server's memory
 * and to commands, on this machine's nats-server, for `--orders` orders (1,000,000 by
 * default) through their whole life (placed, accepted, delivered).
 *
 *   npm run build --silent && node dist/test/bench/archive.js [--orders 1000000]
 *     [--parts without,with,reference,commands,rebuild] [--duration 10 --concurrency 64]
 *     [--customers 1000 --shops 50 --reactions off --max-share 0.25]
 *
 * Parts: `without` and `with` are the two runs, each on a fresh nats-server (its own port and
 * store directory) and data directory; `reference` (needs `with`) measures a third server
 * holding only what stayed live; `commands` the bursts of commands; `rebuild` the views made
 * from nothing. Per run, in order:
 *
 *   fill      the orders' commits are written straight to `EVENTS`: going through `dispatch`
 *             costs about 0.5 ms of CPU per command here, too slow for 3,000,000 commits. They
 *             go through the real store (`createJetStreamEventStore`'s append inside the
 *             sealing store, with the `converge-keys` bucket), 512 appends in flight, in waves
 *             of 4,000 orders (placed, then accepted, then delivered), each expecting its
 *             order's previous position as the write path does. Their shape is the write
 *             path's own: one shop and one order are run through the app on the in-memory
 *             runtime and copied with other ids, so the delivered commit carries
 *             `metadata.finished`. Customer ids are sealed, as in real runs: sealing changes
 *             a commit's bytes, not its subject (`events.order.<id>`); each customer adds one
 *             key to `KV_converge-keys` (`--customers`), in both runs and the reference alike.
 *   fold      `createConverge` on that server folds them into the views (the lifecycle view,
 *             the archive's work list, among them) and the notifier fills `NOTIFY`, with the
 *             archiver paused (its flag set in `converge-reactions` before the runtime starts).
 *   commands  `--duration` s of new orders through `converge.dispatch`, `--concurrency` at a
 *             time, three times in the same runtime: archiver paused (the archive still
 *             empty); resumed, once its first record is in, while it works through the
 *             backlog of every delivered order; and idle once the archive is done. Without
 *             archiving the same three bursts are a control for the noise. Each reports the
 *             CPU nats-server and this process used meanwhile.
 *   archive   (with) until every delivered order is archived and removed: aggregates and
 *             commits per second from the archive's status counts.
 *   measures  the runtime stopped: nats-server's RSS and the subjects of `EVENTS` and `NOTIFY`;
 *             then nats-server restarted on the same store: the time from spawn until
 *             `EVENTS` answers, and RSS again (RSS shows removed subjects only after a restart).
 *   rebuild   the runtime started again without `<dataDir>/views` (archiver paused): commits
 *             folded per second until `settled()`, across the archive and `EVENTS`.
 *
 * Without archiving is the same app and runtime with `archive.afterMs` of ten years: nothing
 * falls due, so both runs keep the same views. With archiving: `afterMs` 0, `intervalMs` 50,
 * `batchSize` 500, `maxShare` from `--max-share` (the default's 0.25). The app is the reference app's aggregates and views without its reactors
 * and processes (`--reactions on` keeps them): with them every order also has an
 * `~orderAcceptance` instance stream, a second subject per order (archived once it ends), and
 * the run would mostly measure the reactions. The live set's reference is a third nats-server
 * given a copy of every message of every stream of the archived server but the archive's
 * records: the shops, the orders of the bursts, their notices, the KV buckets. The copy drops
 * the `Nats-Msg-Id` header, so it holds no duplicate-window entries; that errs against the
 * archive. converge runs inside this process, archiver included (under `npm start` it runs in
 * the projector), so the bursts share the process with it. A position a feed finds in neither
 * `EVENTS` nor the archive (converge then recreates the feed's consumer) is looked up at the
 * end of the run and listed.
 *
 * Loopback only; every phase stops by itself (or fails after 120 s without progress), and
 * the script stops the servers and removes the directories it made, on Ctrl-C too.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kvm } from '@nats-io/kv';
import { pino, type LogFn } from 'pino';
import { ConvergeError, createConverge, resolveConfig, type Converge } from '../../src/index.js';
import { personalDeclarations } from '../../src/core/personal.js';
import { NOTIFY } from '../../src/integration/notifier.js';
import type { NatsLink } from '../../src/nats/connection.js';
import { REACTIONS_BUCKET } from '../../src/react/reactionStore.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { ensureEventStream, EVENTS } from '../../src/store/eventStream.js';
import { kvKeyStore } from '../../src/store/keys.js';
import { shreddedStore } from '../../src/store/shredded.js';
import { cpuMs } from '../../load/procs.js';
import { shopPlatform } from '../../app.js';
import { orderHistory } from '../../projections/orderHistory/orderHistory.projection.js';
import { printSummary, type ArchiveRate, type Burst, type FeedGap, type RunFigures, type ServerSnapshot } from './archiveReport.js';
import { cleanUp, freshServer, leftovers, memoryOf, removeDir, restartServer, slowConsumers, stopServer, streamCounts, tempDir, type BenchServer } from './benchNats.js';
import { commitTemplates, customerId, fillOrders, shopId, type CommitTemplates } from './orderFill.js';
import { copyStreams } from './streamCopy.js';
import { percentile, writeResult } from './report.js';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000000' },
    parts: { type: 'string', default: 'without,with,reference,commands,rebuild' },
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    customers: { type: 'string', default: '1000' },
    shops: { type: 'string', default: '50' },
    reactions: { type: 'string', default: 'off' },
    'max-share': { type: 'string', default: '0.25' },
  },
});
function whole(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number of at least ${min}, not ${raw}`);
  return n;
}
const ORDERS = whole('orders', values.orders, 1);
const SHOPS = whole('shops', values.shops, 1);
const CUSTOMERS = whole('customers', values.customers, 1);
const DURATION_S = whole('duration', values.duration, 1);
const CONCURRENCY = whole('concurrency', values.concurrency, 1);
if (values.reactions !== 'on' && values.reactions !== 'off') throw new Error(`--reactions is on or off, not ${values.reactions}`);
const REACTIONS = values.reactions === 'on';
const MAX_SHARE = Number(values['max-share']);
if (!(MAX_SHARE > 0 && MAX_SHARE <= 1)) throw new Error(`--max-share is a share of the time, in (0, 1], not ${values['max-share']}`);
const PARTS = ['without', 'with', 'reference', 'commands', 'rebuild'];
const parts = new Set(values.parts.split(',').filter(Boolean));
const unknown = [...parts].filter((p) => !PARTS.includes(p));
if (unknown.length > 0) throw new Error(`--parts takes ${PARTS.join(',')}; not ${unknown.join(',')}`);
if (parts.has('reference') && !parts.has('with')) throw new Error('--parts reference needs with: it copies what the archived server kept live');
const app = REACTIONS ? shopPlatform : { ...shopPlatform, reactors: [], processes: [] };
/** Aggregates archived once every order is: with the processes, every order's instance too. */
const TARGET = ORDERS * (REACTIONS ? 2 : 1);
const NEVER_MS = 10 * 365 * 86_400_000;
const STALL_MS = 120_000;
const ARCHIVE_SUBJECT = 'events.~~archive.all';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (line: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
const left = leftovers();
const runtimes = new Set<Converge>();

/** Calls `line` every `ms` and logs what it answers, until the answered function is called. */
function every(ms: number, line: () => string | Promise<string>): () => void {
  const timer = setInterval(() => void Promise.resolve(line()).then(say, () => undefined), ms);
  return () => clearInterval(timer);
}

/** nats-server's memory and what `EVENTS` and `NOTIFY` hold, two seconds after the runtime stopped or the server started. */
async function snapshot(server: BenchServer): Promise<ServerSnapshot> {
  await sleep(2000);
  return { ...memoryOf(server.proc.pid), events: await streamCounts(server.link, EVENTS), notify: await streamCounts(server.link, NOTIFY) };
}

/** Sets the archiver's pause where every runtime reads it (the `converge-reactions` bucket), before a runtime starts. */
async function setArchivePaused(link: NatsLink, paused: boolean): Promise<void> {
  const kv = await new Kvm(link.js).create(REACTIONS_BUCKET, { history: 1, replicas: 1 });
  await kv.put('archiver.paused', String(paused));
}

/**
 * converge's warnings as one line each, repeats within 5 s counted; the positions a feed
 * found in neither `EVENTS` nor the archive (it then recreates its consumer) are collected in `gaps`.
 */
function runtimeLogger(gaps: Set<number>) {
  // A warning repeated within 5 s (numbers aside) is counted, not printed.
  const recent = new Map<string, { at: number; more: number }>();
  return pino({
    level: 'warn',
    hooks: {
      logMethod(args: Parameters<LogFn>, _method: LogFn, level: number) {
        const [first, second] = args as unknown[];
        const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : '';
        const err = typeof first === 'object' && first !== null ? (first as { err?: { message?: string } }).err?.message : undefined;
        const found = /positions ([\d, ]+)(?:, …)? are in neither EVENTS nor the archive/.exec(`${msg} ${err ?? ''}`);
        for (const p of found?.[1]?.split(',') ?? []) gaps.add(Number(p.trim()));
        const line = `${msg}${err && !msg.includes(err) ? `: ${err}` : ''}`;
        const kind = line.replace(/\d+/g, 'N').slice(0, 60);
        const shown = recent.get(kind);
        if (shown && Date.now() - shown.at < 5000) shown.more++;
        else {
          say(`converge ${level >= 50 ? 'error' : 'warning'}: ${line}${shown?.more ? ` (and ${shown.more} more like it)` : ''}`);
          recent.set(kind, { at: Date.now(), more: 0 });
        }
      },
    },
  });
}

async function startRuntime(url: string, dataDir: string, archiving: boolean, gaps: Set<number>): Promise<Converge> {
  for (let attempt = 1; ; attempt++) {
    try {
      const converge = await createConverge(app, {
        config: { nats: { url }, dataDir, archive: { afterMs: archiving ? 0 : NEVER_MS, intervalMs: 50, batchSize: 500, maxShare: MAX_SHARE } },
        logger: runtimeLogger(gaps),
      });
      runtimes.add(converge);
      return converge;
    } catch (err) {
      // A server with a million subjects can be slow to answer its first requests (after a
      // restart, or while consumers are made); a failed start has stopped what it started.
      if (attempt === START_ATTEMPTS) throw err;
      say(`the runtime did not start (attempt ${attempt} of ${START_ATTEMPTS}): ${(err as Error).message}; trying again`);
    }
  }
}

/** Starts of the runtime tried before a run is given up. */
const START_ATTEMPTS = 3;

/** Stops a runtime, giving up on it after 30 s (one whose connection nats-server dropped may not drain). */
async function stopRuntime(converge: Converge): Promise<void> {
  const stopped = await Promise.race([converge.stop().then(() => true), sleep(30_000).then(() => false)]);
  if (!stopped) say('warning: the runtime did not stop within 30 s; left to the end of the script');
  else runtimes.delete(converge);
}

/** Waits until the archiver has read the pause set before the start; pauses it should it run. */
async function pausedAtStart(converge: Converge): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
    if (converge.status().archive?.archiver.state === 'paused') return;
  }
  say(`warning: the archiver is ${converge.status().archive?.archiver.state} 10 s after the start although paused in ${REACTIONS_BUCKET}; pausing it`);
  await converge.archive.pause();
}

/** The lowest position every view, the notifier and (with reactions) every reaction has reached. */
function lowestPosition(converge: Converge): number {
  const s = converge.status();
  const reactions = REACTIONS ? (s.reactions ?? []).map((r) => r.position) : [];
  return Math.min(...s.projections.map((p) => p.position), ...(s.notifier ? [s.notifier.position] : []), ...reactions);
}

/** Waits until the views, the notifier and the reactions have reached `EVENTS`'s last position and it held still; logs progress. */
async function caughtUp(converge: Converge, link: NatsLink, phase: string): Promise<{ ms: number; head: number }> {
  const t0 = performance.now();
  const from = lowestPosition(converge);
  const head = async () => (await link.jsm.streams.info(EVENTS)).state.last_seq;
  let moved = { at: Date.now(), position: from };
  const stop = every(5000, async () => {
    const at = lowestPosition(converge);
    return `${phase}: views and notifier at ${fmt(at)} of ${fmt(await head())}, ${fmt((at - from) / ((performance.now() - t0) / 1000))} positions/s`;
  });
  try {
    for (;;) {
      const last = await head();
      const at = lowestPosition(converge);
      if (at >= last && (await head()) === last) return { ms: performance.now() - t0, head: last };
      if (at > moved.position) moved = { at: Date.now(), position: at };
      if (Date.now() - moved.at > STALL_MS) throw new Error(`${phase}: no progress for ${STALL_MS / 1000} s at ${at} of ${last}: ${JSON.stringify(converge.status())}`);
      await sleep(100);
    }
  } finally {
    stop();
  }
}

/** New orders through `dispatch` for `durationS`, `CONCURRENCY` at a time, with the CPU nats-server and this process used. */
async function burst(converge: Converge, natsPid: number, label: string, durationS: number): Promise<Burst> {
  const latencies: number[] = [];
  let accepted = 0;
  let refused = 0;
  let failed = 0;
  let n = 0;
  const natsCpu = cpuMs(natsPid) ?? 0;
  const ownCpu = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const i = n++;
        const sent = performance.now();
        try {
          const data = { shopId: shopId(i % SHOPS), customerId: customerId(i, CUSTOMERS), items: [{ menuId: 'm1', quantity: 1 }] };
          const result = await converge.dispatch({ aggregate: 'order', id: `${label}-${i}`, type: 'PlaceOrder', data } as never);
          if (result.kind !== 'accepted') refused++;
          else {
            accepted++;
            latencies.push(performance.now() - sent);
          }
        } catch {
          failed++;
        }
      }
    }),
  );
  const ms = performance.now() - t0;
  const own = process.cpuUsage(ownCpu);
  return {
    accepted, refused, failed,
    perS: accepted / (ms / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    natsCpuPct: (((cpuMs(natsPid) ?? natsCpu) - natsCpu) / ms) * 100,
    convergeCpuPct: ((own.user + own.system) / 1000 / ms) * 100,
  };
}

interface ArchiveSample {
  readonly at: number;
  readonly aggregates: number;
  readonly commits: number;
  readonly mb: number;
}

function archiveSample(converge: Converge): ArchiveSample {
  const a = converge.status().archive!;
  return { at: performance.now(), aggregates: a.archivedAggregates, commits: a.archivedCommits, mb: a.archiveBytes / 1e6 };
}

function rateOf(from: ArchiveSample, to: ArchiveSample): ArchiveRate {
  const seconds = (to.at - from.at) / 1000;
  return { seconds, aggregatesPerS: (to.aggregates - from.aggregates) / seconds, commitsPerS: (to.commits - from.commits) / seconds };
}

/** Waits until every finished aggregate is archived and removed from `EVENTS` and `NOTIFY`; logs progress. */
async function archivedAll(converge: Converge, link: NatsLink, since: ArchiveSample): Promise<ArchiveSample> {
  let last = archiveSample(converge);
  let movedAt = Date.now();
  const stop = every(5000, async () => {
    const now = archiveSample(converge);
    const r = rateOf(since, now);
    const { archiver } = converge.status().archive!;
    const live = (await streamCounts(link, EVENTS)).subjects;
    return `archive: ${fmt(now.aggregates)} of ${fmt(TARGET)} aggregates (${fmt(now.commits)} commits, ${now.mb.toFixed(0)} MB), ${fmt(r.aggregatesPerS)} aggregates/s and ${fmt(r.commitsPerS)} commits/s since resumed; EVENTS subjects ${fmt(live)}${archiver.error ? `; error: ${archiver.error}` : ''}`;
  });
  try {
    for (;;) {
      const now = archiveSample(converge);
      const a = converge.status().archive!;
      if (now.aggregates >= TARGET && a.indexPosition > 0 && a.archiver.purgedThrough >= a.indexPosition) return now;
      if (now.aggregates > last.aggregates) movedAt = Date.now();
      last = now;
      if (Date.now() - movedAt > STALL_MS) throw new Error(`the archive made no progress for ${STALL_MS / 1000} s: ${JSON.stringify(a)}`);
      await sleep(100);
    }
  } finally {
    stop();
  }
}

/** The two bursts, archiver paused and then resumed, and the archive's counts when it was resumed and after the bursts. */
async function bursts(converge: Converge, server: BenchServer, archiving: boolean) {
  const pid = server.proc.pid;
  say('commands: warm-up, 2 s');
  await burst(converge, pid, 'warm', 2);
  say(`commands: ${DURATION_S} s of new orders, ${CONCURRENCY} at a time, archiver paused`);
  const paused = await burst(converge, pid, 'paused', DURATION_S);
  say(`  ${fmt(paused.perS)} orders/s, p50 ${paused.p50Ms.toFixed(1)} ms, p99 ${paused.p99Ms.toFixed(1)} ms; CPU nats-server ${fmt(paused.natsCpuPct)}%, converge ${fmt(paused.convergeCpuPct)}%`);
  const resumedAt = archiveSample(converge);
  await converge.archive.resume();
  // The burst starts once a record is in, so that it runs beside an archiver at work.
  for (const deadline = Date.now() + 30_000; archiving && archiveSample(converge).aggregates === resumedAt.aggregates && Date.now() < deadline; ) await sleep(10);
  const before = { archived: archiveSample(converge), subjects: (await streamCounts(server.link, EVENTS)).subjects };
  say(`commands: ${DURATION_S} s of new orders, ${CONCURRENCY} at a time, archiver ${archiving ? `resumed, ${fmt(TARGET - before.archived.aggregates)} aggregates still to archive` : 'resumed with nothing due'}`);
  const working = await burst(converge, pid, 'working', DURATION_S);
  const after = { archived: archiveSample(converge), subjects: (await streamCounts(server.link, EVENTS)).subjects };
  const removedMeanwhile = before.subjects + working.accepted - after.subjects;
  say(`  ${fmt(working.perS)} orders/s, p50 ${working.p50Ms.toFixed(1)} ms, p99 ${working.p99Ms.toFixed(1)} ms; CPU nats-server ${fmt(working.natsCpuPct)}%, converge ${fmt(working.convergeCpuPct)}%; ${fmt(removedMeanwhile)} subjects removed from EVENTS meanwhile`);
  const commands = { paused, working, ratio: working.perS / paused.perS, removedMeanwhile, backlogAtEnd: archiving ? TARGET - after.archived.aggregates : 0 };
  return { resumedAt, afterBursts: after.archived, commands };
}

/** Looks up each position a feed found missing: is it in `EVENTS` now, and has its order's view folded it? */
async function lookUpGaps(converge: Converge, link: NatsLink, gaps: ReadonlySet<number>): Promise<FeedGap[]> {
  const out: FeedGap[] = [];
  for (const position of [...gaps].sort((a, b) => a - b)) {
    const msg = await link.jsm.streams.getMessage(EVENTS, { seq: position }).catch(() => undefined);
    const [, aggregate, id] = msg?.subject.split('.') ?? [];
    const folded = aggregate === 'order' && id ? (converge.views.get(orderHistory, id)?.position ?? 0) >= position : null;
    out.push({ position, subject: msg?.subject ?? null, folded });
  }
  return out;
}

/**
 * Views from nothing: the runtime started without `<dataDir>/views`, timed until `settled()`.
 * A rebuild that makes no progress for `STALL_MS` is given up and reported with its last error.
 */
async function rebuild(server: BenchServer, dataDir: string, archiving: boolean): Promise<NonNullable<RunFigures['rebuild']>> {
  await setArchivePaused(server.link, true);
  removeDir(left, join(dataDir, 'views'));
  const events = await streamCounts(server.link, EVENTS);
  say(`rebuild: views from nothing over ${fmt(events.messages)} live commits${archiving ? ' and the archive' : ''}`);
  const gaps = new Set<number>();
  const t0 = performance.now();
  let converge: Converge;
  try {
    converge = await startRuntime(server.proc.url, dataDir, archiving, gaps);
  } catch (err) {
    const ms = performance.now() - t0;
    say(`rebuild: the runtime did not start (${secs(ms)}): ${(err as Error).message}`);
    return { failed: `the runtime did not start: ${(err as Error).message}`, ms, position: 0, gaps: gaps.size, slowConsumers: slowConsumers(server) };
  }
  const viewsAt = () => Math.min(...converge.status().projections.map((p) => p.position));
  const stop = every(5000, () => `rebuild: views at position ${fmt(viewsAt())}, ${fmt(viewsAt() / ((performance.now() - t0) / 1000))} positions/s`);
  try {
    let best = { position: viewsAt(), at: Date.now() };
    let lastError = '';
    for (;;) {
      try {
        await converge.settled({ timeoutMs: 5000, allowParked: true });
        break;
      } catch (err) {
        const caughtUp = err instanceof ConvergeError && err.code === 'not_caught_up';
        if (!caughtUp) lastError = (err as Error).message;
        if (viewsAt() > best.position) best = { position: viewsAt(), at: Date.now() };
        if (Date.now() - best.at > STALL_MS) {
          const ms = performance.now() - t0;
          say(`rebuild: given up after ${secs(ms)}, views at position ${fmt(best.position)}: ${lastError || 'no progress'}`);
          const failed = `no progress for ${STALL_MS / 1000} s at position ${best.position}; last error: ${lastError || 'none'}`;
          return { failed, ms, position: best.position, gaps: gaps.size, slowConsumers: slowConsumers(server) };
        }
        if (!caughtUp) await sleep(1000);
      }
    }
    const ms = performance.now() - t0;
    stop();
    const commits = events.messages + (converge.status().archive?.archivedCommits ?? 0);
    say(`rebuild: settled after ${secs(ms)}: ${fmt(commits)} commits, ${fmt(commits / (ms / 1000))}/s; waiting for the notifier`);
    const notifier = await caughtUp(converge, server.link, 'rebuild, notifier');
    const notifySubjectsAfter = (await streamCounts(server.link, NOTIFY)).subjects;
    return { ms, commits, perS: commits / (ms / 1000), notifierMs: notifier.ms, notifySubjectsAfter, gaps: gaps.size, slowConsumers: slowConsumers(server) };
  } finally {
    stop();
    await stopRuntime(converge);
  }
}

/** The live set alone: a fresh server given every message the archived one kept but the archive's records. */
async function referencePart(from: BenchServer): Promise<NonNullable<RunFigures['reference']>> {
  say('reference: copying the live set to a fresh nats-server');
  const ref = await freshServer(left, 'converge-bench-archive-reference');
  try {
    const copied = await copyStreams(from.link, ref.link, { skipSubject: ARCHIVE_SUBJECT });
    const afterFill = await snapshot(ref);
    const restart = await restartServer(left, ref);
    const afterRestart = await snapshot(ref);
    const counts = Object.entries(copied).map(([stream, c]) => `${stream} ${fmt(c.copied)}${c.copied < c.expected ? ` of ${fmt(c.expected)}` : ''}`);
    say(`reference: copied ${counts.join(', ')}; RSS ${afterFill.rssMb} MB, after a restart ${afterRestart.rssMb} MB`);
    return { copied, afterFill, restartMs: restart.startMs, afterRestart };
  } finally {
    await stopServer(left, ref);
    removeDir(left, ref.storeDir);
  }
}

/** Writes the shops and orders straight to `EVENTS`, sealed, as the write path would. */
async function fill(server: BenchServer, templates: CommitTemplates, mode: string): Promise<RunFigures['fill']> {
  await ensureEventStream(server.link, resolveConfig({}, app.settings).eventStore.duplicateWindowMs);
  const keys = await kvKeyStore(server.link, { replicas: 1 });
  const store = shreddedStore(createJetStreamEventStore(server.link, { publishTimeoutMs: 30_000 }), { keys, personal: personalDeclarations(app.aggregates) });
  const total = SHOPS * templates.shop.length + ORDERS * templates.order.length;
  say(`[${mode}] fill: ${fmt(SHOPS)} shops and ${fmt(ORDERS)} orders straight to EVENTS, ${fmt(total)} commits (sealed, 512 appends in flight)`);
  const t0 = performance.now();
  let shown = t0;
  const commits = await fillOrders(store, templates, { shops: SHOPS, customers: CUSTOMERS, orders: ORDERS }, (done) => {
    if (performance.now() - shown < 5000) return;
    shown = performance.now();
    say(`fill: ${fmt(done)} of ${fmt(total)} commits, ${fmt(done / ((shown - t0) / 1000))}/s; nats-server RSS ${memoryOf(server.proc.pid).rssMb} MB`);
  });
  const ms = performance.now() - t0;
  say(`[${mode}] fill: ${fmt(commits)} commits in ${secs(ms)}, ${fmt(commits / (ms / 1000))}/s`);
  return { commits, ms, perS: commits / (ms / 1000), rssMb: memoryOf(server.proc.pid).rssMb };
}

/** One run: fill, fold, bursts, archive (when archiving), then the measures, the reference, a restart and a rebuild. */
async function run(mode: 'without' | 'with', templates: CommitTemplates): Promise<RunFigures> {
  const archiving = mode === 'with';
  const server = await freshServer(left, `converge-bench-archive-${mode}-nats`);
  const dataDir = tempDir(left, `converge-bench-archive-${mode}-data`);
  try {
    const filled = await fill(server, templates, mode);
    await setArchivePaused(server.link, true);
    const gapsSeen = new Set<number>();
    const converge = await startRuntime(server.proc.url, dataDir, archiving, gapsSeen);
    let folded: RunFigures['fold'];
    let commands: RunFigures['commands'];
    let archive: RunFigures['archive'];
    let gaps: FeedGap[];
    try {
      await pausedAtStart(converge);
      const fold = await caughtUp(converge, server.link, `[${mode}] fold`);
      folded = { ms: fold.ms, commits: fold.head, perS: fold.head / (fold.ms / 1000), eventsSubjects: (await streamCounts(server.link, EVENTS)).subjects, notifySubjects: (await streamCounts(server.link, NOTIFY)).subjects };
      say(`[${mode}] fold: ${fmt(fold.head)} commits in ${secs(fold.ms)}, ${fmt(folded.perS)}/s; EVENTS ${fmt(folded.eventsSubjects)} subjects, NOTIFY ${fmt(folded.notifySubjects)}`);
      let resumedAt = archiveSample(converge);
      let afterBursts = resumedAt;
      if (parts.has('commands')) ({ resumedAt, afterBursts, commands } = await bursts(converge, server, archiving));
      else await converge.archive.resume();
      if (archiving) {
        const done = await archivedAll(converge, server.link, resumedAt);
        archive = { ...rateOf(resumedAt, done), aggregates: done.aggregates, commits: done.commits, mb: done.mb, afterBursts: rateOf(afterBursts, done) };
        say(`[with] archive: ${fmt(done.aggregates)} aggregates in ${secs(archive.seconds * 1000)}, ${fmt(archive.aggregatesPerS)}/s, ${fmt(archive.commitsPerS)} commits/s`);
      }
      await caughtUp(converge, server.link, `[${mode}] settle`);
      if (commands) {
        say(`commands: ${DURATION_S} s of new orders, ${CONCURRENCY} at a time, archiver idle${archiving ? ' with the archive done' : ''}`);
        const idle = await burst(converge, server.proc.pid, 'idle', DURATION_S);
        say(`  ${fmt(idle.perS)} orders/s, p50 ${idle.p50Ms.toFixed(1)} ms, p99 ${idle.p99Ms.toFixed(1)} ms; CPU nats-server ${fmt(idle.natsCpuPct)}%, converge ${fmt(idle.convergeCpuPct)}%`);
        commands = { ...commands, idle, idleRatio: idle.perS / commands.paused.perS };
        await caughtUp(converge, server.link, `[${mode}] settle`);
      }
      gaps = await lookUpGaps(converge, server.link, gapsSeen);
    } finally {
      await stopRuntime(converge);
    }
    const afterRun = await snapshot(server);
    const runSlowConsumers = slowConsumers(server);
    say(`[${mode}] after the run: nats-server RSS ${afterRun.rssMb} MB (peak ${afterRun.peakMb}); EVENTS ${JSON.stringify(afterRun.events)}; NOTIFY ${JSON.stringify(afterRun.notify)}`);
    const reference = archiving && parts.has('reference') ? await referencePart(server) : undefined;
    say(`[${mode}] restarting nats-server`);
    const restart = await restartServer(left, server);
    const afterRestart = await snapshot(server);
    say(`[${mode}] restarted in ${fmt(restart.startMs)} ms (stopped in ${fmt(restart.stopMs)} ms, ${restart.exit}): RSS ${afterRestart.rssMb} MB`);
    const rebuilt = parts.has('rebuild') ? await rebuild(server, dataDir, archiving) : undefined;
    return { mode, fill: filled, fold: folded, ...(commands ? { commands } : {}), ...(archive ? { archive } : {}), gaps, slowConsumers: runSlowConsumers, afterRun, ...(reference ? { reference } : {}), restart, afterRestart, ...(rebuilt ? { rebuild: rebuilt } : {}) };
  } finally {
    await stopServer(left, server);
    removeDir(left, server.storeDir);
    removeDir(left, dataDir);
  }
}

/** Runs the parts asked for and prints their figures; false when a run failed. */
async function main(): Promise<boolean> {
  say(`archive benchmark: ${fmt(ORDERS)} orders, parts ${[...parts].join(',')}; converge runs in this process, nats-server on loopback`);
  const templates = await commitTemplates(app);
  const failures: string[] = [];
  // A run that fails is reported and the other still runs: each has its own server and directories.
  const attempt = (mode: 'without' | 'with') =>
    run(mode, templates).catch((err: unknown) => {
      failures.push(`run ${mode} archiving: ${(err as Error)?.message ?? String(err)}`);
      say(`[${mode}] failed: ${(err as Error)?.stack ?? String(err)}`);
      return undefined;
    });
  const without = parts.has('without') ? await attempt('without') : undefined;
  const withArchive = parts.has('with') ? await attempt('with') : undefined;
  const how = `${fmt(ORDERS)} orders placed, accepted, delivered (written straight to EVENTS, sealed); ${fmt(SHOPS)} shops, ${fmt(CUSTOMERS)} customers; reactions ${REACTIONS ? 'on' : 'off'}; bursts ${DURATION_S} s × ${CONCURRENCY}; archive.maxShare ${MAX_SHARE}`;
  printSummary(`archive benchmark: ${how}`, without, withArchive);
  for (const f of failures) console.log(`  failed: ${f}`);
  for (const e of escaped) console.log(`  escaped from converge: ${e}`);
  const figures = { orders: ORDERS, maxShare: MAX_SHARE, shops: SHOPS, customers: CUSTOMERS, reactions: REACTIONS, durationS: DURATION_S, concurrency: CONCURRENCY, parts: [...parts], without, with: withArchive, failures, escaped };
  writeResult('archive', figures);
  console.log(JSON.stringify({ bench: 'archive', at: new Date().toISOString(), ...figures }));
  return failures.length === 0;
}

// An error converge lets escape from its own work (one did when nats-server dropped its
// connection) is reported, not fatal: the phase it hurts then fails by its own deadline.
const escaped: string[] = [];
const report = (kind: string) => (err: unknown) => {
  escaped.push(`${kind}: ${(err as Error)?.message ?? String(err)}`);
  say(`${kind} in converge: ${(err as Error)?.stack ?? String(err)}`);
};
process.on('uncaughtException', report('uncaught exception'));
process.on('unhandledRejection', report('unhandled rejection'));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping the servers this script started and removing its directories`);
    void cleanUp(left).finally(() => process.exit(130));
  });
}
let code = 0;
try {
  if (!(await main())) code = 1;
} catch (err) {
  code = 1;
  say(`failed: ${(err as Error)?.stack ?? String(err)}`);
} finally {
  for (const converge of runtimes) await Promise.race([converge.stop().catch(() => undefined), sleep(10_000)]);
  runtimes.clear();
  await cleanUp(left);
}
// A runtime that failed to start has no handle to stop it, and its connection retries forever.
process.exit(code);
