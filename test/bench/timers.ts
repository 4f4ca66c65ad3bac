/**
 * Reactions and durable timers on the reference app (its `orderAcceptance` process gives each
 * placed order a timer; `orders.acceptTimeoutMs` sets when it falls due), each part on a
 * fresh nats-server and data directory:
 *
 *   lateness  how late timers fire (their ~Fired record's store time minus their due time),
 *             p50/p99 over 1,000 orders, at rest and under 1,000 commands/s
 *   cost      orders placed at saturation with the reactions on and off, alternating (on,
 *             off, on, off): commands/s and CPU per command by role, CPU counted until the
 *             views and the reactions have caught up
 *   pending   100,000 orders with pending timers: RSS by role and the LMDB file at rest; then
 *             the cluster is stopped until every timer is due, restarted, and its start-up,
 *             the firing rate and the time to fire them all are measured
 *
 *   npm run build && node dist/test/bench/timers.js [--parts lateness,cost,pending --pending 100000]
 *
 * Loopback only; every phase is bounded in time and the script stops everything it started.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { startCluster, type Cluster, type ClusterPorts } from '../../load/cluster.js';
import { httpClient } from '../../load/client.js';
import { phase, type PhaseResult } from '../../load/run.js';
import { clusterRoles, cpuOf } from '../../load/procs.js';
import { median, percentile, printTable, seedShops, writeResult } from './report.js';

const { values } = parseArgs({
  options: {
    parts: { type: 'string', default: 'lateness,cost,pending' },
    pending: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1' },
  },
});
const parts = new Set(values.parts.split(','));
const workers = Number(values.workers);
const SHOPS = 50;
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const app = join(import.meta.dirname, 'reactionsApp.js');

interface Env {
  readonly link: NatsLink;
  readonly natsPid: number;
  readonly dataDir: string;
  readonly natsUrl: string;
  close(): Promise<void>;
}

/** A fresh nats-server and data directory. */
async function fresh(): Promise<Env> {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-bench-timers-nats-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-timers-data-'));
  const nats = await launchNatsServer({ port: 0, storeDir });
  const link = await connectNats(nats.url, { name: 'bench-timers', timeoutMs: 5000, log });
  return {
    link,
    natsPid: nats.pid,
    dataDir,
    natsUrl: nats.url,
    async close() {
      await link.close();
      await nats.stop();
      rmSync(storeDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function host(env: Env, opts: { acceptMs: number; reactions?: 'on' | 'off'; ports?: ClusterPorts }): Promise<Cluster> {
  return startCluster(env.natsUrl, env.dataDir, workers, {
    main: app,
    readyTimeoutMs: 300_000,
    ...(opts.ports ? { ports: opts.ports } : {}),
    env: { CONVERGE_ORDERS_ACCEPT_TIMEOUT_MS: String(opts.acceptMs), BENCH_REACTIONS: opts.reactions ?? 'on' },
  });
}

async function post(base: string, path: string, body: object): Promise<number> {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

/** `SHOPS` shops `bench-<n>` with menu item `m1`, open for orders. */
async function openShops(base: string): Promise<void> {
  await seedShops(base, SHOPS);
  await Promise.all(Array.from({ length: SHOPS }, (_, i) => post(base, `/shops/bench-${i}/open`, {})));
}

const placeCall = (base: string, id: string, n: number) => ({
  method: 'POST' as const,
  url: `${base}/orders/${id}/place`,
  body: { shopId: `bench-${n % SHOPS}`, customerId: `c${n % 1000}`, items: [{ menuId: 'm1', quantity: 1 }] },
});

interface AdminStatus {
  readonly projections: ReadonlyArray<{ readonly name: string; readonly position: number }>;
  readonly reactions?: ReadonlyArray<{ readonly name: string; readonly position: number; readonly state: string; readonly instances?: { readonly timersPending: number; readonly open: number } }>;
}

async function adminStatus(cluster: Cluster): Promise<AdminStatus> {
  return (await (await fetch(`${cluster.admin}/admin/projections`)).json()) as AdminStatus;
}

async function head(env: Env): Promise<number> {
  return (await env.link.jsm.streams.info('EVENTS')).state.last_seq;
}

/** Waits until every view and (when `reactions`) every reaction has reached the store's last position, and it holds still. */
async function caughtUp(env: Env, cluster: Cluster, reactions: boolean, timeoutMs = 600_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await head(env);
    const s = await adminStatus(cluster).catch(() => undefined);
    const behind = !s || s.projections.some((p) => p.position < last) || (reactions && (s.reactions ?? []).some((r) => r.position < last || r.state !== 'running'));
    if (!behind && (await head(env)) === last) return last;
    if (Date.now() > deadline) throw new Error(`not caught up with ${last} within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

/** Timers of `orderAcceptance` fired after `after`: each instance's due time and its firing's store time. */
async function firings(env: Env, after: number, until: number): Promise<Array<{ id: string; due: number; firedAt: number }>> {
  const store = createJetStreamEventStore(env.link, { publishTimeoutMs: 5000 });
  const due = new Map<string, number>();
  const out: Array<{ id: string; due: number; firedAt: number }> = [];
  const sub = await store.subscribe(0, { batchSize: 1000 });
  try {
    for await (const { commit, storedAt } of sub) {
      if (commit.aggregate === '~orderAcceptance') {
        for (const e of commit.events) {
          const data = e.data as { due?: string };
          if (e.type === '~Scheduled') due.set(commit.id, Date.parse(String(data.due)));
          if (e.type === '~Fired' && commit.position > after) out.push({ id: commit.id, due: due.get(commit.id) ?? Number.NaN, firedAt: storedAt });
        }
      }
      if (commit.position >= until) break;
    }
  } finally {
    sub.close();
  }
  return out;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

function rssByRole(cluster: Cluster, env: Env): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [role, pids] of clusterRoles(cluster.pid)) out[role] = pids.reduce((sum, pid) => sum + rssMb(pid), 0);
  out['nats-server'] = rssMb(env.natsPid);
  return out;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** p50/p99 lateness of the timers of the orders placed in a window, while `load` runs beside them. */
async function latenessPart(): Promise<object> {
  const env = await fresh();
  const acceptMs = 10_000;
  const cluster = await host(env, { acceptMs });
  try {
    await openShops(cluster.command);
    const measure = async (label: string, load: () => Promise<PhaseResult | undefined>) => {
      const before = await caughtUp(env, cluster, true);
      const orders = phase({ connections: 16, durationS: 10, rate: 100, call: (() => { let n = 0; return () => placeCall(cluster.command, `${label}-${++n}`, n); })() });
      const [placed, loaded] = await Promise.all([orders, load()]);
      // The last timers fall due ten seconds after the last order.
      await sleep(acceptMs + 2000);
      const last = await caughtUp(env, cluster, true);
      const fired = (await firings(env, before, last)).filter((f) => f.id.startsWith(`${label}-`));
      const late = fired.map((f) => f.firedAt - f.due);
      const result = { placed: Math.round(placed.rps * 10), fired: fired.length, p50Ms: percentile(late, 50), p99Ms: percentile(late, 99), maxMs: Math.max(...late), load: loaded };
      console.error(`lateness ${label}: ${JSON.stringify(result)}`);
      return result;
    };
    const atRest = await measure('rest', async () => undefined);
    let n = 0;
    const underLoad = await measure('load', () =>
      phase({ connections: 64, durationS: 24, rate: 1000, call: () => ({ method: 'POST', url: `${cluster.command}/shops/bench-${++n % SHOPS}/change-menu-price`, body: { menuId: 'm1', price: 1000 + (n % 9000) } }) }),
    );
    printTable('timer lateness (fired record stored − due), 1,000 orders placed at 100/s, 10 s accept timeout', [
      ['at rest: p50 / p99 / max', `${atRest.p50Ms} / ${atRest.p99Ms} / ${atRest.maxMs} ms (${atRest.fired} fired)`],
      [`beside ${fmt(underLoad.load?.rps ?? 0)} commands/s (paced to 1,000): p50 / p99 / max`, `${underLoad.p50Ms} / ${underLoad.p99Ms} / ${underLoad.maxMs} ms (${underLoad.fired} fired; load p99 ${underLoad.load?.p99} ms)`],
    ]);
    return { acceptMs, atRest, underLoad };
  } finally {
    await cluster.stop();
    await env.close();
  }
}

/** Orders placed at saturation with the reactions on and off, alternating, each on fresh servers. */
async function costPart(): Promise<object> {
  const duration = Number(values.duration);
  const connections = Number(values.connections);
  const runs: Array<{ mode: 'on' | 'off'; rps: number; p50: number; p99: number; non2xx: number; cpuUs: Record<string, number>; drainMs: number }> = [];
  for (const mode of ['on', 'off', 'on', 'off'] as const) {
    const env = await fresh();
    const cluster = await host(env, { acceptMs: 600_000, reactions: mode });
    try {
      await openShops(cluster.command);
      let n = 0;
      await phase({ connections, durationS: 2, call: () => placeCall(cluster.command, `warm-${++n}`, n) });
      await caughtUp(env, cluster, mode === 'on');
      const roles = () => new Map([...clusterRoles(cluster.pid), ['nats-server', [env.natsPid]]]);
      const cpu = cpuOf(roles);
      const result = await phase({ connections, durationS: duration, call: () => placeCall(cluster.command, `o-${++n}`, n) });
      const ended = Date.now();
      await caughtUp(env, cluster, mode === 'on');
      const drainMs = Date.now() - ended;
      const used = cpu.end();
      const ok = Math.round(result.rps * duration - result.non2xx - result.errors);
      const cpuUs = Object.fromEntries([...used].map(([role, ms]) => [role, ok > 0 ? Math.round((ms * 1000) / ok) : 0]));
      runs.push({ mode, rps: result.rps, p50: result.p50, p99: result.p99, non2xx: result.non2xx + result.errors, cpuUs, drainMs });
      console.error(`cost, reactions ${mode}: ${fmt(result.rps)}/s, p50 ${result.p50} ms, p99 ${result.p99} ms, drained ${drainMs} ms after; CPU per command ${JSON.stringify(cpuUs)} µs`);
    } finally {
      await cluster.stop();
      await env.close();
    }
  }
  const of = (mode: 'on' | 'off') => runs.filter((r) => r.mode === mode);
  const sum = (cpu: Record<string, number>, which: (role: string) => boolean) => Object.entries(cpu).filter(([r]) => which(r)).reduce((s, [, v]) => s + v, 0);
  const rows: Array<readonly [string, string]> = [];
  for (const [i, [on, off]] of of('on').map((r, i) => [r, of('off')[i]!] as const).entries()) {
    rows.push([`pair ${i + 1}: orders/s on / off (ratio)`, `${fmt(on.rps)} / ${fmt(off.rps)} (${(on.rps / off.rps).toFixed(2)})`]);
    rows.push([`pair ${i + 1}: CPU µs per order in converge on / off`, `${sum(on.cpuUs, (r) => r !== 'nats-server')} / ${sum(off.cpuUs, (r) => r !== 'nats-server')}`]);
    rows.push([`pair ${i + 1}: of which the projector on / off`, `${on.cpuUs['projector'] ?? 0} / ${off.cpuUs['projector'] ?? 0}`]);
    rows.push([`pair ${i + 1}: nats-server CPU µs per order on / off`, `${on.cpuUs['nats-server'] ?? 0} / ${off.cpuUs['nats-server'] ?? 0}`]);
  }
  printTable(`placing orders at saturation, ${connections} connections, ${duration} s: reactions on vs off`, rows);
  return { duration, connections, runs, medianOn: median(of('on').map((r) => r.rps)), medianOff: median(of('off').map((r) => r.rps)) };
}

/** Places `count` orders as fast as the cluster takes them, `connections` at a time. */
async function placeMany(base: string, count: number, connections: number): Promise<{ ms: number; failed: number }> {
  const client = httpClient(connections, 30_000);
  const started = Date.now();
  let next = 0;
  let failed = 0;
  let shown = started;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < count) {
          const n = next++;
          const answer = await client.send(placeCall(base, `p-${n}`, n));
          if (answer.status !== 200) failed++;
          if (Date.now() - shown > 10_000) {
            shown = Date.now();
            console.error(`  placed ${fmt(next)} of ${fmt(count)} (${fmt((next * 1000) / (shown - started))}/s)`);
          }
        }
      }),
    );
  } finally {
    client.close();
  }
  return { ms: Date.now() - started, failed };
}

/** 100,000 pending timers: memory at rest, then all of them due at once after a restart. */
async function pendingPart(): Promise<object> {
  const count = Number(values.pending);
  const acceptMs = 300_000;
  const env = await fresh();
  const t0 = Date.now();
  let cluster = await host(env, { acceptMs });
  const firstStartMs = Date.now() - t0;
  try {
    await openShops(cluster.command);
    const rssEmpty = rssByRole(cluster, env);
    const placing = await placeMany(cluster.command, count, 64);
    const placedAt = Date.now();
    console.error(`placed ${fmt(count)} orders in ${fmt(placing.ms)} ms (${placing.failed} failed)`);
    await caughtUp(env, cluster, true);
    const caughtUpMs = Date.now() - placedAt;
    await sleep(3000);
    const pending = (await adminStatus(cluster)).reactions?.find((r) => r.name === 'orderAcceptance')?.instances?.timersPending ?? 0;
    const rssPending = rssByRole(cluster, env);
    const viewsFile = [join(env.dataDir, 'views', 'data.mdb'), join(env.dataDir, 'views')].map((f) => statSync(f, { throwIfNoEntry: false })).find((s) => s?.isFile());
    const lmdbMb = (viewsFile?.size ?? 0) / 1e6;
    console.error(`${fmt(pending)} timers pending; RSS ${JSON.stringify(rssPending)} MB (empty: ${JSON.stringify(rssEmpty)})`);
    const ports = cluster.ports;
    await cluster.stop();
    // Every timer falls due while nothing runs: the last was scheduled when its order was placed.
    const allDue = placedAt + acceptMs + 1000;
    console.error(`stopped; waiting ${fmt((allDue - Date.now()) / 1000)} s until every timer is due`);
    await sleep(Math.max(0, allDue - Date.now()));
    const before = await head(env);
    const restartAt = Date.now();
    cluster = await host(env, { acceptMs, ports });
    const readyMs = Date.now() - restartAt;
    let runningMs = Number.NaN;
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(100)) {
      const r = (await adminStatus(cluster).catch(() => undefined))?.reactions?.find((x) => x.name === 'orderAcceptance');
      if (r?.state === 'running') {
        runningMs = Date.now() - restartAt;
        break;
      }
    }
    let left = Number.NaN;
    for (const deadline = Date.now() + 1_200_000; Date.now() < deadline; await sleep(1000)) {
      left = (await adminStatus(cluster).catch(() => undefined))?.reactions?.find((x) => x.name === 'orderAcceptance')?.instances?.timersPending ?? Number.NaN;
      if (left === 0) break;
      if ((Date.now() - restartAt) % 10_000 < 1000) console.error(`  ${fmt(left)} timers still pending`);
    }
    const last = await caughtUp(env, cluster, true);
    const firedAllMs = Date.now() - restartAt;
    const fired = await firings(env, before, last);
    const first = Math.min(...fired.map((f) => f.firedAt));
    const lastFired = Math.max(...fired.map((f) => f.firedAt));
    const rate = fired.length / ((lastFired - first) / 1000);
    const rssAfter = rssByRole(cluster, env);
    printTable(`${fmt(count)} pending timers (orders placed at saturation, 300 s accept timeout)`, [
      ['placing them', `${fmt(placing.ms)} ms (${fmt((count * 1000) / placing.ms)} orders/s), reactions caught up ${fmt(caughtUpMs)} ms after`],
      ['timers pending, as the admin API counts them', fmt(pending)],
      ['RSS by role, MB, with no orders', JSON.stringify(rssEmpty)],
      ['RSS by role, MB, with them pending', JSON.stringify(rssPending)],
      ['LMDB views file (all views, the due index among them)', `${lmdbMb.toFixed(0)} MB`],
      ['start-up: fresh / after the restart with all due (ready)', `${fmt(firstStartMs)} / ${fmt(readyMs)} ms`],
      ['after the restart: reactions running', `${fmt(runningMs)} ms`],
      ['firing rate, all due at once (first to last firing)', `${fmt(rate)} timers/s (${fmt(fired.length)} fired in ${fmt(lastFired - first)} ms)`],
      ['after the restart: every timer fired and its order rejected, views caught up', `${fmt(firedAllMs)} ms`],
      ['RSS by role, MB, after', JSON.stringify(rssAfter)],
    ]);
    return { count, acceptMs, placing, caughtUpMs, pending, rssEmpty, rssPending, lmdbMb, firstStartMs, readyMs, runningMs, fired: fired.length, rate, firedAllMs, rssAfter };
  } finally {
    await cluster.stop();
    await env.close();
  }
}

const results: Record<string, object> = {};
if (parts.has('lateness')) results['lateness'] = await latenessPart();
if (parts.has('cost')) results['cost'] = await costPart();
if (parts.has('pending')) results['pending'] = await pendingPart();
writeResult('timers', { workers, ...results });
