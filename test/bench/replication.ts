/**
 * Scale-out figures on a 3-node NATS cluster on loopback (a fresh one per measurement):
 *   1. commands/s and latency at saturation, and projection lag at a fixed rate, with the
 *      streams at 3 copies against 1 (one converge host, the same code, alternating order);
 *   2. the partition handover: how long after a host is killed (`kill -9` of its primary,
 *      worker and projector) or drained (SIGTERM) the other host holds every partition;
 *   3. what holding leases costs at rest: CPU with leases against static ownership.
 *
 *   node dist/test/bench/replication.js [--runs 1 --duration 8 --connections 64 --shops 500 --lag-rate 500 --handovers 3 --parts replicas,handover,idle]
 *
 * Loopback only; every phase is bounded in time and the script stops everything it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { startCluster, type Cluster } from '../../load/cluster.js';
import { clusterRoles, cpuOf } from '../../load/procs.js';
import { phase } from '../../load/run.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { freePort, launchNatsServer, loopbackClusterArgs, type NatsServerProcess } from '../../src/nats/server.js';
import { LEASES_BUCKET } from '../../src/write/leases.js';
import { median, percentile, printTable, seedShops, writeResult } from './report.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    shops: { type: 'string', default: '500' },
    'lag-rate': { type: 'string', default: '500' },
    handovers: { type: 'string', default: '3' },
    parts: { type: 'string', default: 'replicas,handover,idle' },
  },
});
const runs = Number(values.runs);
const duration = Number(values.duration);
const connections = Number(values.connections);
const shops = Number(values.shops);
const lagRate = Number(values['lag-rate']);
const handovers = Number(values.handovers);
const parts = new Set(values.parts.split(','));
const PARTITIONS = 64;
const LEASE_TTL_MS = 4000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = pino({ level: 'silent' });
const post = (url: string, body: object) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });

interface NatsCluster {
  readonly url: string;
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

/** A fresh 3-node NATS cluster on loopback, with stores in a temp dir. */
async function startNatsCluster(): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'converge-bench-natscluster-'));
  const routes = [await freePort(), await freePort(), await freePort()];
  const servers: NatsServerProcess[] = [];
  for (let i = 0; i < 3; i++) servers.push(await launchNatsServer({ port: 0, storeDir: join(dir, `n${i + 1}`), extraArgs: loopbackClusterArgs('converge-bench', i, routes) }));
  const url = servers.map((s) => s.url).join(',');
  // JetStream answers (and a client can be made) once the cluster has a meta leader.
  for (let i = 0; ; i++) {
    try {
      const link = await connectNats(url, { name: 'bench-probe', timeoutMs: 3000, log });
      await link.jsm.getAccountInfo();
      await link.close();
      break;
    } catch (err) {
      if (i > 100) throw err;
      await sleep(200);
    }
  }
  return {
    url,
    pids: servers.map((s) => s.pid),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startHost(natsUrl: string, dataDir: string, hostId: string, replicas: number, ports?: Cluster['ports'], ownership = 'leases'): Promise<Cluster> {
  return startCluster(natsUrl, dataDir, 1, {
    ...(ports ? { ports } : {}),
    readyTimeoutMs: 120_000,
    // The kills make every in-flight command warn; the bench reports what matters.
    logLevel: 'error',
    env: {
      CONVERGE_NATS_REPLICAS: String(replicas),
      CONVERGE_CLUSTER_HOST_ID: hostId,
      CONVERGE_CLUSTER_LEASE_TTL_MS: String(LEASE_TTL_MS),
      CONVERGE_CLUSTER_OWNERSHIP: ownership,
    },
  });
}

interface ReplicaRun {
  readonly replicas: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly failed: number;
  readonly lagP50: number;
  readonly lagP99: number;
  readonly lagRate: number;
  readonly probeErrors: number;
}

/** Saturation for `duration` s, then `lagRate` commands/s for `duration` s with a read-your-writes probe every 50 ms. */
async function replicaRun(replicas: number): Promise<ReplicaRun> {
  const nats = await startNatsCluster();
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-data-'));
  const host = await startHost(nats.url, dataDir, 'bench', replicas);
  try {
    await seedShops(host.command, shops);
    let n = 0;
    const change = () => {
      n++;
      return { method: 'POST' as const, url: `${host.command}/shops/bench-${n % shops}/change-menu-price`, body: { menuId: 'm1', price: 1000 + (n % 9000) } };
    };
    const sat = await phase({ connections, durationS: duration, call: change });

    const lags: number[] = [];
    let probeErrors = 0;
    const probe = async (k: number) => {
      try {
        const shop = `bench-${(k * 7919) % shops}`;
        const res = await post(`${host.command}/shops/${shop}/change-menu-price`, { menuId: 'm1', price: 1000 + (k % 9000) });
        const { position } = (await res.json()) as { position: number };
        if (res.status !== 200) return void probeErrors++;
        const t0 = performance.now();
        const read = await fetch(`${host.query}/shops/${shop}?waitMs=5000`, { headers: { 'x-min-position': String(position) }, signal: AbortSignal.timeout(10_000) });
        await read.arrayBuffer();
        if (read.status !== 200) return void probeErrors++;
        lags.push(performance.now() - t0);
      } catch {
        probeErrors++;
      }
    };
    const started = performance.now();
    const load = phase({ connections, durationS: duration, rate: lagRate, call: change });
    const probes: Promise<void>[] = [];
    for (let k = 0, next = started; next < started + duration * 1000; k++, next += 50) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      probes.push(probe(k));
    }
    const paced = await load;
    await Promise.all(probes);
    return {
      replicas,
      rps: sat.rps,
      p50: sat.p50,
      p99: sat.p99,
      failed: sat.non2xx + sat.errors + paced.non2xx + paced.errors,
      lagP50: percentile(lags, 50),
      lagP99: percentile(lags, 99),
      lagRate: paced.rps,
      probeErrors,
    };
  } finally {
    await host.stop();
    await nats.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Each partition's lease holder ('' for none). */
async function holders(link: NatsLink): Promise<string[]> {
  const kv = await new Kvm(link.js).open(LEASES_BUCKET);
  return Promise.all(
    Array.from({ length: PARTITIONS }, async (_, p) => {
      const e = await kv.get(`p.${p}`).catch(() => null);
      return e && e.operation === 'PUT' ? e.string() : '';
    }),
  );
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (!(await ok())) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await sleep(20);
  }
  return Date.now() - started;
}

/** Two hosts with R3 streams under light load; host b is killed (or drained) `handovers` times, and restarted after each. */
async function handoverRuns(): Promise<{ killedMs: number[]; drainedMs: number[] }> {
  const nats = await startNatsCluster();
  const link = await connectNats(nats.url, { name: 'bench-leases', timeoutMs: 3000, log });
  const dirs = [mkdtempSync(join(tmpdir(), 'converge-bench-a-')), mkdtempSync(join(tmpdir(), 'converge-bench-b-'))];
  const a = await startHost(nats.url, dirs[0]!, 'a', 3);
  let b = await startHost(nats.url, dirs[1]!, 'b', 3);
  const killedMs: number[] = [];
  const drainedMs: number[] = [];
  try {
    await seedShops(a.command, shops);
    const allOnA = async () => (await holders(link)).every((h) => h.startsWith('a.'));
    const shared = async () => {
      const h = await holders(link);
      return h.every(Boolean) && h.some((x) => x.startsWith('b.'));
    };
    for (let i = 0; i < handovers; i++) {
      for (const how of ['kill', 'drain'] as const) {
        await waitFor('both hosts hold leases', shared, 60_000);
        // Light load through host a while b goes, so the survivor's lease rounds share its event loop with commands.
        let n = 0;
        const load = phase({ connections: 8, durationS: 12, rate: 200, call: () => ({ method: 'POST', url: `${a.command}/shops/bench-${n++ % shops}/change-menu-price`, body: { menuId: 'm1', price: 1000 + (n % 9000) } }) });
        await sleep(1000);
        if (how === 'kill') {
          for (const pids of clusterRoles(b.pid).values()) for (const pid of pids) process.kill(pid, 'SIGKILL');
        } else {
          void b.stop();
        }
        const ms = await waitFor('host a holds every partition', allOnA, 60_000);
        (how === 'kill' ? killedMs : drainedMs).push(ms);
        console.error(`handover ${i + 1}/${handovers} after b was ${how === 'kill' ? 'killed' : 'drained'}: ${ms} ms`);
        await load;
        await b.stop();
        b = await startHost(nats.url, dirs[1]!, 'b', 3, b.ports);
      }
    }
  } finally {
    await b.stop();
    await a.stop();
    await link.close();
    await nats.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return { killedMs, drainedMs };
}

/**
 * What holding the leases costs at rest: CPU of the worker and of the three nats-servers
 * over `IDLE_S` seconds with no commands, one host on R3, with leases against static ownership.
 */
const IDLE_S = 20;
async function idleCost(ownership: 'leases' | 'static'): Promise<{ ownership: string; workerMsPerS: number; natsMsPerS: number }> {
  const nats = await startNatsCluster();
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-idle-'));
  const host = await startHost(nats.url, dataDir, 'idle', 3, undefined, ownership);
  try {
    await sleep(5000);
    const cpu = cpuOf(() => new Map([...clusterRoles(host.pid), ['nats-server', [...nats.pids]]]));
    await sleep(IDLE_S * 1000);
    const used = cpu.end();
    return { ownership, workerMsPerS: (used.get('worker') ?? 0) / IDLE_S, natsMsPerS: (used.get('nats-server') ?? 0) / IDLE_S };
  } finally {
    await host.stop();
    await nats.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const replicaRuns: ReplicaRun[] = [];
  for (let r = 0; parts.has('replicas') && r < runs; r++) {
    for (const replicas of r % 2 === 0 ? [1, 3] : [3, 1]) {
      const run = await replicaRun(replicas);
      replicaRuns.push(run);
      console.error(
        `run ${r + 1}/${runs}, R${replicas}: ${run.rps.toFixed(0)} commands/s, p50 ${run.p50} ms, p99 ${run.p99} ms; ` +
          `at ${run.lagRate.toFixed(0)}/s lag p50 ${run.lagP50.toFixed(1)} ms, p99 ${run.lagP99.toFixed(1)} ms; failed ${run.failed}, probe errors ${run.probeErrors}`,
      );
    }
  }
  const of = (replicas: number) => replicaRuns.filter((x) => x.replicas === replicas);
  const med = (replicas: number, key: 'rps' | 'p50' | 'p99' | 'lagP50' | 'lagP99') => median(of(replicas).map((x) => x[key]));
  const handover = parts.has('handover') ? await handoverRuns() : undefined;
  const idle = parts.has('idle') ? [await idleCost('static'), await idleCost('leases')] : [];
  const rows: Array<readonly [string, string]> = [];
  if (replicaRuns.length > 0) {
    rows.push(
      [`commands/s at saturation, ${connections} connections`, `R1 ${med(1, 'rps').toFixed(0)}, R3 ${med(3, 'rps').toFixed(0)}, R3/R1 ${(med(3, 'rps') / med(1, 'rps')).toFixed(2)}`],
      ['latency p50 / p99', `R1 ${med(1, 'p50')} / ${med(1, 'p99')} ms, R3 ${med(3, 'p50')} / ${med(3, 'p99')} ms`],
      [`lag p50 / p99 at ${lagRate} commands/s`, `R1 ${med(1, 'lagP50').toFixed(1)} / ${med(1, 'lagP99').toFixed(1)} ms, R3 ${med(3, 'lagP50').toFixed(1)} / ${med(3, 'lagP99').toFixed(1)} ms`],
    );
  }
  if (handover) {
    rows.push(
      [`handover after kill -9 of a host (lease TTL ${LEASE_TTL_MS} ms)`, `median ${median(handover.killedMs)} ms (${handover.killedMs.join(', ')})`],
      ['handover after a host drains (SIGTERM)', `median ${median(handover.drainedMs)} ms (${handover.drainedMs.join(', ')})`],
    );
  }
  for (const i of idle) rows.push([`CPU at rest over ${IDLE_S} s, ${i.ownership} ownership`, `worker ${i.workerMsPerS.toFixed(1)} ms/s, the three nats-servers ${i.natsMsPerS.toFixed(1)} ms/s`]);
  printTable(`Scale-out on a 3-node NATS cluster, one host with 1 worker per measurement (medians of ${runs} run(s))`, rows);
  writeResult('replication', { runs, duration, connections, shops, lagRate, leaseTtlMs: LEASE_TTL_MS, replicaRuns, handover, idle });
}

await main();
