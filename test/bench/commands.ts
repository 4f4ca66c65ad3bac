/**
 * Commands over HTTP against the cluster (as many workers as npm start runs, 1,000 shops) beside raw
 * JetStream publish throughput from one client, and beside the floor (`floor.ts`: the same
 * command through Fastify, JetStream and LMDB with nothing of converge), measured in the same run.
 *
 *   npm run bench            # or: node dist/test/bench/commands.js [--runs 3 --duration 8 --warmup 3 --connections 64 --floor true]
 *   node dist/test/bench/commands.js --crud true [--kind menu-price|place-order]
 *
 * `--crud true` drives the CRUD baseline (PostgreSQL on 5432) with the same commands in each
 * run, after converge; `--kind place-order` makes each command a new order instead of a price
 * change on a seeded shop (the floor runs for price changes only).
 *
 * Each run's commands start with `--warmup` seconds unmeasured, as `npm run load` does, so the
 * CPU per command is the steady state's: not the compilation of the command path, nor the
 * first commands after the raw-publish phase that shares the machine.
 *
 * Loopback only; every phase is bounded in time and the script stops everything it started.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { startCluster, supervise } from '../../load/cluster.js';
import { phase } from '../../load/run.js';
import { rawPublish } from '../../load/limits.js';
import { median, printTable, seedShops, writeResult } from './report.js';
import { clusterRoles, cpuOf, type RolePids } from '../../load/procs.js';
import { defaultWorkers } from '../../src/host/config.js';
import { startTarget, type Started } from '../../load/targets.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    /** Seconds of commands before each measured window; 0 measures from the first command. */
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    shops: { type: 'string', default: '1000' },
    workers: { type: 'string', default: String(defaultWorkers()) },
    /**
     * `menu-price`: each command changes a price on one of the seeded shops. `place-order`:
     * each places an order, a new aggregate, with the reactions an order starts.
     */
    kind: { type: 'string', default: 'menu-price' },
    /** Whether each run also drives the floor (`floor.ts`) with the same commands (menu prices only). */
    floor: { type: 'string', default: 'true' },
    /** Whether each run also drives the CRUD baseline (on PostgreSQL, as `load/bench.js` starts it) with the same commands. */
    crud: { type: 'string', default: 'false' },
  },
});
const runs = Number(values.runs);
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const shops = Number(values.shops);
const kind = values.kind;
if (kind !== 'menu-price' && kind !== 'place-order') throw new Error(`--kind menu-price or place-order, not ${kind}`);

type CommandRun = { rps: number; p50: number; p99: number; non2xx: number; errors: number; cpuUs: Record<string, number> };

let phases = 0;

async function commandRun(base: string, roles: () => RolePids): Promise<CommandRun> {
  let n = 0;
  // Order ids unique to this phase: each `place` makes a new aggregate on every target.
  const prefix = `p${++phases}-${Date.now().toString(36)}`;
  const call = () => {
    n++;
    return kind === 'place-order'
      ? { method: 'POST' as const, url: `${base}/orders/${prefix}-o${n}/place`, body: { shopId: `bench-${n % shops}`, customerId: `c${n % 1000}`, items: [{ menuId: 'm1', quantity: 1 }] } }
      : { method: 'POST' as const, url: `${base}/shops/bench-${n % shops}/change-menu-price`, body: { menuId: 'm1', price: 1000 + (n % 9000) } };
  };
  if (warmup > 0) await phase({ connections, durationS: warmup, call });
  const cpu = cpuOf(roles);
  const result = await phase({ connections, durationS: duration, call });
  // CPU per 2xx by role: the bench's own process (the load client) is not among them.
  const used = cpu.end();
  const ok = Math.round((result.rps * duration) - result.non2xx - result.errors);
  const cpuUs = Object.fromEntries([...used].map(([role, ms]) => [role, ok > 0 ? Math.round((ms * 1000) / ok) : 0]));
  return { ...result, cpuUs };
}

/**
 * The floor's two processes on `natsUrl`, started for one run and stopped after it, then
 * its HTTP route alone (`http`: the same route, schema and answer, without the store).
 */
async function floorRun(natsUrl: string, natsPid: number, dataDir: string, run: number): Promise<{ store: CommandRun; http: CommandRun }> {
  const script = join(import.meta.dirname, 'floor.js');
  const start = (args: string[]) => {
    const proc = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = new Promise<{ port?: number }>((resolve, reject) => {
      proc.once('message', (m) => resolve(m as { port?: number }));
      proc.once('exit', (code) => reject(new Error(`the floor's ${args[1]} exited with ${code} during start-up`)));
    });
    return { proc, ready, ...supervise(proc, 5000) };
  };
  const stream = ['--nats', natsUrl, '--stream', `FLOOR${run}`];
  const fold = start(['--role', 'fold', ...stream, '--dir', join(dataDir, `floor-${run}`)]);
  const api = start(['--role', 'api', ...stream]);
  let store: CommandRun;
  try {
    await fold.ready;
    const { port } = await api.ready;
    const pids = new Map([['floor api', [api.proc.pid!]], ['floor fold', [fold.proc.pid!]], ['nats-server', [natsPid]]]);
    store = await commandRun(`http://127.0.0.1:${port}`, () => pids);
  } finally {
    await Promise.all([api.stop(), fold.stop()]);
  }
  const http = start(['--role', 'http', ...stream]);
  try {
    const { port } = await http.ready;
    return { store, http: await commandRun(`http://127.0.0.1:${port}`, () => new Map([['floor http', [http.proc.pid!]]])) };
  } finally {
    await http.stop();
  }
}

async function main(): Promise<void> {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-bench-nats-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-data-'));
  const nats = await launchNatsServer({ port: 0, storeDir });
  const link = await connectNats(nats.url, { name: 'bench', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  try {
    const cluster = await startCluster(nats.url, dataDir, Number(values.workers));
    await seedShops(cluster.command, shops, { open: kind === 'place-order' });
    const raw: number[] = [];
    const http: CommandRun[] = [];
    const floor: CommandRun[] = [];
    const httpFloor: CommandRun[] = [];
    const crud: CommandRun[] = [];
    let crudTarget: Started | undefined;
    if (values.crud === 'true') {
      crudTarget = await startTarget('crud', Number(values.workers));
      await seedShops(crudTarget.command, shops, { open: kind === 'place-order' });
    }
    const perRole = (us: Record<string, number>) => Object.entries(us).map(([role, v]) => `${role} ${v} µs`).join(', ');
    for (let r = 0; r < runs; r++) {
      raw.push(await rawPublish(link, Math.min(duration, 5), 256));
      http.push(await commandRun(cluster.command, () => new Map([...clusterRoles(cluster.pid), ['nats-server', [nats.pid]]])));
      console.error(`run ${r + 1}/${runs}: raw ${raw[r]!.toFixed(0)}/s, http ${http[r]!.rps.toFixed(0)}/s p99 ${http[r]!.p99} ms; CPU per command: ${perRole(http[r]!.cpuUs)}`);
      if (crudTarget) {
        crud.push(await commandRun(crudTarget.command, () => new Map()));
        console.error(`run ${r + 1}/${runs}: CRUD ${crud[r]!.rps.toFixed(0)}/s p99 ${crud[r]!.p99} ms, non-2xx ${crud[r]!.non2xx}, errors ${crud[r]!.errors}`);
      }
      if (values.floor !== 'true' || kind !== 'menu-price') continue;
      // The cluster idles meanwhile: its processes' CPU is not counted in the floor's.
      const f = await floorRun(nats.url, nats.pid, dataDir, r);
      floor.push(f.store);
      httpFloor.push(f.http);
      console.error(`run ${r + 1}/${runs}: floor ${f.store.rps.toFixed(0)}/s p99 ${f.store.p99} ms, non-2xx ${f.store.non2xx}, errors ${f.store.errors}; CPU per command: ${perRole(f.store.cpuUs)}`);
      console.error(`run ${r + 1}/${runs}: its route alone ${f.http.rps.toFixed(0)}/s; CPU per request: ${perRole(f.http.cpuUs)}`);
    }
    await cluster.stop();
    await crudTarget?.stop();
    const summary = {
      rawPublishPerSec: median(raw),
      commandsPerSec: median(http.map((h) => h.rps)),
      p50Ms: median(http.map((h) => h.p50)),
      p99Ms: median(http.map((h) => h.p99)),
      non2xx: http.reduce((s, h) => s + h.non2xx, 0),
      errors: http.reduce((s, h) => s + h.errors, 0),
      cpuUs: Object.fromEntries(Object.keys(http[0]?.cpuUs ?? {}).map((role) => [role, median(http.map((h) => h.cpuUs[role] ?? 0))])),
    };
    const ownCpu = (us: Record<string, number>) => Object.entries(us).filter(([role]) => role !== 'nats-server').reduce((sum, [, v]) => sum + v, 0);
    const converge = ownCpu(summary.cpuUs);
    // Each run's ratios, converge over the floor, from the two phases of that run.
    const floorRows: Array<[string, string]> = floor.length === 0 ? [] : [
      ['the floor: commands/s, latency p50 / p99', `${median(floor.map((f) => f.rps)).toFixed(0)} /s, ${median(floor.map((f) => f.p50))} ms / ${median(floor.map((f) => f.p99))} ms`],
      ['the floor: CPU per command (Fastify, JetStream, LMDB)', `${median(floor.map((f) => ownCpu(f.cpuUs)))} µs: api ${median(floor.map((f) => f.cpuUs['floor api'] ?? 0))}, fold ${median(floor.map((f) => f.cpuUs['floor fold'] ?? 0))}, nats-server ${median(floor.map((f) => f.cpuUs['nats-server'] ?? 0))} µs`],
      ['the floor\'s route alone, no store: CPU per request', `${median(httpFloor.map((f) => f.cpuUs['floor http'] ?? 0))} µs`],
      ['converge / floor, by run: commands/s', floor.map((f, r) => (http[r]!.rps / f.rps).toFixed(2)).join(', ')],
      ['converge / floor, by run: own CPU per command', floor.map((f, r) => (ownCpu(http[r]!.cpuUs) / ownCpu(f.cpuUs)).toFixed(2)).join(', ')],
    ];
    printTable('commands over HTTP vs raw JetStream publish (medians)', [
      ['raw JetStream publish, 256 in flight, one client', `${summary.rawPublishPerSec.toFixed(0)} msg/s`],
      [`${kind} commands over HTTP, ${connections} connections, ${shops} shops`, `${summary.commandsPerSec.toFixed(0)} /s`],
      ['ratio commands / raw publish (target ≥ 0.4)', (summary.commandsPerSec / summary.rawPublishPerSec).toFixed(2)],
      ['latency p50 / p99 (target p99 ≤ 50 ms)', `${summary.p50Ms} ms / ${summary.p99Ms} ms`],
      ['non-2xx / errors (target 0)', `${summary.non2xx} / ${summary.errors}`],
      ['CPU per command in converge (target ≤ 250 µs)', `${converge} µs: ${Object.entries(summary.cpuUs).map(([role, v]) => `${role} ${v}`).join(', ')} µs`],
      ...floorRows,
      ...(crud.length === 0 ? [] : ([
        ['CRUD (PostgreSQL): commands/s, latency p50 / p99', `${median(crud.map((c) => c.rps)).toFixed(0)} /s, ${median(crud.map((c) => c.p50))} ms / ${median(crud.map((c) => c.p99))} ms`],
        ['converge / CRUD, by run: commands/s (target ≥ 1.5)', crud.map((c, r) => (http[r]!.rps / c.rps).toFixed(2)).join(', ')],
        ...(floor.length === 0 ? [] : [['floor / CRUD, by run: commands/s', crud.map((c, r) => (floor[r]!.rps / c.rps).toFixed(2)).join(', ')] as [string, string]]),
      ] as Array<[string, string]>)),
    ]);
    writeResult('commands', { kind, runs, duration, warmup, connections, shops, workers: Number(values.workers), raw, http, floor, httpFloor, crud, summary });
  } finally {
    await link.close();
    await nats.stop();
    rmSync(storeDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
