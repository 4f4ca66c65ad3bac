/**
 * Notices and import: latency from a command's reply to a subscriber receiving its
 * notice, and the full import rate (`GET /import/shops`, NDJSON) over 100,000 shops.
 *
 *   node dist/test/bench/notices.js [--commands 2000 --rate 500 --shops 100000]
 *
 * Its own nats-server and temp dirs; the cluster as `npm start` runs it; loopback only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { eventSubject } from '../../src/store/eventStream.js';
import { type Commit } from '../../src/core/eventStore.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import type { Notice } from '../../src/integration/notifier.js';
import { startCluster, type Cluster } from '../../load/cluster.js';
import { median, printTable, writeResult } from './report.js';
import { defaultWorkers } from '../../src/host/config.js';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '500' },
    shops: { type: 'string', default: '100000' },
    workers: { type: 'string', default: String(defaultWorkers()) },
  },
});

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
const post = (url: string, body: object) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
  );

/** Sends `commands` renames at `rate`/s over 100 shops and times each notice's arrival after its reply. */
async function noticeLatency(cluster: Cluster, link: NatsLink) {
  for (let s = 0; s < 100; s++) await post(`${cluster.command}/shops/lat-${s}/register`, { name: 'n', category: 'c', ownerId: 'u' });
  await post(`${cluster.admin}/admin/subscribers`, { name: 'bench' });
  const replied = new Map<string, number>();
  const received = new Map<string, number>();
  const messages = await (await link.js.consumers.get('NOTIFY', 'bench')).consume();
  void (async () => {
    for await (const m of messages) {
      const n = m.json<Notice>();
      received.set(`${n.id}@${n.version}`, performance.now());
      m.ack();
    }
  })();
  const total = Number(values.commands);
  const gap = 1000 / Number(values.rate);
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + i * gap;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const shop = `lat-${i % 100}`;
    inFlight.push(
      post(`${cluster.command}/shops/${shop}/rename`, { name: `n${i}` }).then((res) => {
        if (res.status === 200) replied.set(`${shop}@${res.body.version as number}`, performance.now());
      }),
    );
  }
  await Promise.all(inFlight);
  await new Promise((r) => setTimeout(r, 1000));
  await messages.close();
  // Notices coalesce per batch: a command whose notice was superseded in the same batch is timed by the one that replaced it.
  // A notice can reach the subscriber before the reply reaches the client: that lag is negative, and kept.
  const lags: number[] = [];
  for (const [key, at] of replied) {
    const [shop, version] = key.split('@');
    for (let v = Number(version); v < Number(version) + 50; v++) {
      const got = received.get(`${shop}@${v}`);
      if (got !== undefined) {
        lags.push(got - at);
        break;
      }
    }
  }
  lags.sort((a, b) => a - b);
  return { commands: total, replies: replied.size, timed: lags.length, p50: percentile(lags, 0.5), p99: percentile(lags, 0.99), max: lags[lags.length - 1] ?? NaN };
}

/** Anonymous resident memory of a process in MB: its heap and buffers, not LMDB's file-backed pages. */
function rssAnonMb(pid: number): number {
  const kb = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** The pids behind the query port, by asking `/health` on fresh connections until `workers` answered. */
async function queryPids(cluster: Cluster): Promise<number[]> {
  const pids = new Set<number>();
  for (let i = 0; i < 50 && pids.size < Number(values.workers); i++) {
    const res = await fetch(`${cluster.query}/health`, { headers: { connection: 'close' } });
    pids.add(((await res.json()) as { pid: number }).pid);
  }
  return [...pids];
}

/** Appends `shops` registrations straight to the stream, waits for the view, then times full imports. */
async function importRate(cluster: Cluster, link: NatsLink) {
  const shops = Number(values.shops);
  const at = new Date().toISOString();
  let last = 0;
  for (let i = 0; i < shops; i += 500) {
    const acks = [];
    for (let k = i; k < Math.min(i + 500, shops); k++) {
      const commit: Commit = {
        commandId: `imp-${k}`, commandType: 'RegisterShop', aggregate: 'shop', id: `imp-${k}`, version: 1,
        events: [{ type: 'ShopRegistered', data: { name: `Shop ${k}`, category: 'korean', ownerId: 'o', minOrderAmount: 0, deliveryFee: 0 }, at }],
      };
      acks.push(link.js.publish(eventSubject('shop', `imp-${k}`), JSON.stringify(commit)));
    }
    last = Math.max(last, ...(await Promise.all(acks)).map((a) => a.seq));
  }
  await fetch(`${cluster.query}/shops/imp-0?waitMs=10000`, { headers: { 'x-min-position': String(last) } });
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${cluster.query}/shops/imp-0?waitMs=10000`, { headers: { 'x-min-position': String(last) } });
    await res.arrayBuffer();
    if (res.status === 200) break;
  }
  const pids = await queryPids(cluster);
  const memory = () => pids.reduce((sum, pid) => sum + rssAnonMb(pid), 0);
  const before = memory();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, memory())), 100);
  const rates: number[] = [];
  let lines = 0;
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    const res = await fetch(`${cluster.query}/import/shops`);
    lines = 0;
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) for (const c of decoder.decode(chunk as Uint8Array, { stream: true })) if (c === '\n') lines++;
    rates.push(lines / ((performance.now() - started) / 1000));
  }
  clearInterval(sampler);
  return { shops, lines, rates, rate: median(rates), workerAnonMb: { before, peak } };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'converge-bench-notices-'));
  const nats = await launchNatsServer({ port: 0, storeDir: join(dir, 'nats') });
  const link = await connectNats(nats.url, { name: 'bench', timeoutMs: 10_000, log: pino({ level: 'silent' }) });
  try {
    const cluster = await startCluster(nats.url, join(dir, 'data'), Number(values.workers));
    try {
      const latency = await noticeLatency(cluster, link);
      const imported = await importRate(cluster, link);
      printTable('notices and import', [
        [`notice latency, command reply → subscriber (${latency.timed}/${latency.replies} timed, ${values.rate} commands/s)`, `p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms, max ${latency.max.toFixed(1)} ms`],
        [`full import GET /import/shops, ${imported.lines} shops (median of 3)`, `${imported.rate.toFixed(0)} shops/s`],
        [
          `query workers' anonymous memory (RssAnon, summed) before → peak during exports`,
          `${imported.workerAnonMb.before.toFixed(0)} → ${imported.workerAnonMb.peak.toFixed(0)} MB`,
        ],
      ]);
      writeResult('notices', { latency, imported });
    } finally {
      await cluster.stop();
    }
  } finally {
    await link.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
