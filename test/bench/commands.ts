/**
 * Commands over HTTP against the cluster (as many workers as npm start runs, 1,000 shops) beside raw
 * JetStream publish throughput from one client, measured in the same run.
 *
 *   npm run bench            # or: node dist/test/bench/commands.js [--runs 3 --duration 8 --warmup 3 --connections 64]
 *
 * Each run's commands start with `--warmup` seconds unmeasured, as `npm run load` does, so the
 * CPU per command is the steady state's: not the compilation of the command path, nor the
 * first commands after the raw-publish phase that shares the machine.
 *
 * Loopback only; every phase is bounded in time and the script stops everything it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { startCluster } from '../../load/cluster.js';
import { phase } from '../../load/run.js';
import { rawPublish } from '../../load/limits.js';
import { median, printTable, seedShops, writeResult } from './report.js';
import { clusterRoles, cpuOf, type RolePids } from '../../load/procs.js';
import { defaultWorkers } from '../../src/host/config.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    /** Seconds of commands before each measured window; 0 measures from the first command. */
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    shops: { type: 'string', default: '1000' },
    workers: { type: 'string', default: String(defaultWorkers()) },
  },
});
const runs = Number(values.runs);
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const shops = Number(values.shops);

async function commandRun(base: string, roles: () => RolePids): Promise<{ rps: number; p50: number; p99: number; non2xx: number; errors: number; cpuUs: Record<string, number> }> {
  let n = 0;
  const call = () => {
    n++;
    return { method: 'POST' as const, url: `${base}/shops/bench-${n % shops}/change-menu-price`, body: { menuId: 'm1', price: 1000 + (n % 9000) } };
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

async function main(): Promise<void> {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-bench-nats-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-data-'));
  const nats = await launchNatsServer({ port: 0, storeDir });
  const link = await connectNats(nats.url, { name: 'bench', timeoutMs: 5000, log: pino({ level: 'silent' }) });
  try {
    const cluster = await startCluster(nats.url, dataDir, Number(values.workers));
    await seedShops(cluster.command, shops);
    const raw: number[] = [];
    const http: Awaited<ReturnType<typeof commandRun>>[] = [];
    for (let r = 0; r < runs; r++) {
      raw.push(await rawPublish(link, Math.min(duration, 5), 256));
      http.push(await commandRun(cluster.command, () => new Map([...clusterRoles(cluster.pid), ['nats-server', [nats.pid]]])));
      const us = http[r]!.cpuUs;
      console.error(
        `run ${r + 1}/${runs}: raw ${raw[r]!.toFixed(0)}/s, http ${http[r]!.rps.toFixed(0)}/s p99 ${http[r]!.p99} ms; CPU per command: ` +
          `${Object.entries(us).map(([role, v]) => `${role} ${v} µs`).join(', ')}`,
      );
    }
    await cluster.stop();
    const summary = {
      rawPublishPerSec: median(raw),
      commandsPerSec: median(http.map((h) => h.rps)),
      p50Ms: median(http.map((h) => h.p50)),
      p99Ms: median(http.map((h) => h.p99)),
      non2xx: http.reduce((s, h) => s + h.non2xx, 0),
      errors: http.reduce((s, h) => s + h.errors, 0),
      cpuUs: Object.fromEntries(Object.keys(http[0]?.cpuUs ?? {}).map((role) => [role, median(http.map((h) => h.cpuUs[role] ?? 0))])),
    };
    const converge = Object.entries(summary.cpuUs).filter(([role]) => role !== 'nats-server').reduce((sum, [, v]) => sum + v, 0);
    printTable('commands over HTTP vs raw JetStream publish (medians)', [
      ['raw JetStream publish, 256 in flight, one client', `${summary.rawPublishPerSec.toFixed(0)} msg/s`],
      [`commands over HTTP, ${connections} connections, ${shops} shops`, `${summary.commandsPerSec.toFixed(0)} /s`],
      ['ratio commands / raw publish (target ≥ 0.4)', (summary.commandsPerSec / summary.rawPublishPerSec).toFixed(2)],
      ['latency p50 / p99 (target p99 ≤ 50 ms)', `${summary.p50Ms} ms / ${summary.p99Ms} ms`],
      ['non-2xx / errors (target 0)', `${summary.non2xx} / ${summary.errors}`],
      ['CPU per command in converge (target ≤ 250 µs)', `${converge} µs: ${Object.entries(summary.cpuUs).map(([role, v]) => `${role} ${v}`).join(', ')} µs`],
    ]);
    writeResult('commands', { runs, duration, warmup, connections, shops, workers: Number(values.workers), raw, http, summary });
  } finally {
    await link.close();
    await nats.stop();
    rmSync(storeDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
