/**
 * Read-side benchmarks against the cluster (workers as npm start runs them + projector, 1,000 shops), each
 * measured against a limit from the same run (the targets are in BENCHMARKS.md):
 *   1. `GET /shops/<id>` beside a bare Fastify route on the same query port that sends the same
 *      bytes from memory (`GET /bench/bare/<id>`, test/bench/readsMain.ts); then `GET
 *      /shops/<id>` with 70% of requests revalidating through `If-None-Match` (each shop's
 *      current ETag, so they answer 304); then asked for 15,000 reads/s;
 *   2. projection lag (command reply → visible through the query API) at 2,000 commands/s
 *      (`--lag-rate`; 0 sends the probes alone, the lag's floor), with the CPU per command each
 *      role used meanwhile, workers summed (what the batching costs);
 *   3. rebuild rate of the shopDisplay view from `EVENTS` (~100k extra commits appended first).
 *
 *   node dist/test/bench/reads.js [--runs 3 --duration 5 --connections 50 --shops 1000 --workers n]
 *   node dist/test/bench/reads.js --parts lag   # only part 2; parts: reads, lag, rebuild
 *
 * Loopback only; every phase is bounded in time and the script stops everything it started.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { eventSubject } from '../../src/store/eventStream.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { shopHistoryCommit } from './history.js';
import { startCluster, type Cluster } from '../../load/cluster.js';
import { phase, type PhaseResult } from '../../load/run.js';
/** Share of the revalidating run's requests that send `If-None-Match`. */
const REVALIDATING = 0.7;
/** The rate the paced run asks for, reads per second. */
const PACED_RATE = 15_000;
import { median, percentile, printTable, writeResult } from './report.js';
import { defaultWorkers } from '../../src/host/config.js';
import { clusterRoles, cpuOf } from '../../load/procs.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    shops: { type: 'string', default: '1000' },
    workers: { type: 'string', default: String(defaultWorkers()) },
    /** Which parts to run: any of reads, lag, rebuild. */
    parts: { type: 'string', default: 'reads,lag,rebuild' },
    /** Commands per second beside the lag probes; 0 measures the probes alone (the floor of the lag). */
    'lag-rate': { type: 'string', default: '2000' },
  },
});
const parts = new Set(values.parts.split(',').map((p) => p.trim()));
for (const p of parts) if (!['reads', 'lag', 'rebuild'].includes(p)) throw new Error(`--parts: unknown part ${p} (reads, lag, rebuild)`);
const runs = Number(values.runs);
const duration = Number(values.duration);
const connections = Number(values.connections);
const shops = Number(values.shops);
const workers = Number(values.workers);
for (const [name, n] of Object.entries({ runs, duration, connections, shops, workers })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
}

/** Command rate of the lag phase, per second, beside the probes. */
const LAG_RATE = Number(values['lag-rate']);
if (!Number.isInteger(LAG_RATE) || LAG_RATE < 0) throw new Error('--lag-rate must be a whole number, 0 or more');
/** One prober command every this many ms during the lag phase. */
const PROBE_EVERY_MS = 20;
/** Extra history for the rebuild: REBUILD_SHOPS shops × REBUILD_VERSIONS commits each. */
const REBUILD_SHOPS = 100;
const REBUILD_VERSIONS = 1000;
const REBUILDS = 3;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const randomShop = () => `bench-${Math.floor(Math.random() * shops)}`;
const randomPrice = () => 1000 + Math.floor(Math.random() * 9000);

/** fetch with a deadline, so no single request can hang the benchmark. */
function get(url: string, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<Response> {
  return fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
}
function post(url: string, body?: object, timeoutMs = 15_000): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: body ? { 'content-type': 'application/json' } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

/** Registers, opens and gives one menu item to each of `shops` shops, 50 at a time; answers the highest position. */
async function seed(command: string): Promise<number> {
  let last = 0;
  const send = async (path: string, body: object) => {
    const res = await post(command + path, body);
    const reply = (await res.json()) as { position?: number };
    if (res.status !== 200 || typeof reply.position !== 'number') throw new Error(`seeding ${path}: ${res.status} ${JSON.stringify(reply)}`);
    last = Math.max(last, reply.position);
  };
  for (let i = 0; i < shops; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, shops - i) }, async (_, j) => {
        const id = `bench-${i + j}`;
        await send(`/shops/${id}/register`, { name: id, category: 'korean', ownerId: 'o' });
        await send(`/shops/${id}/open`, {});
        await send(`/shops/${id}/add-menu-item`, { menuId: 'm1', name: 'Kimbap', price: 4000 });
      }),
    );
  }
  return last;
}

/** Waits (bounded) until the query API serves `bench-<last>` at or past `position`. */
async function awaitSeeded(query: string, position: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await get(`${query}/shops/bench-${shops - 1}?waitMs=10000`, { 'x-min-position': String(position) }).catch(() => undefined);
    const status = res?.status;
    await res?.arrayBuffer().catch(() => undefined);
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`the projector did not reach position ${position} in 60 s (last status ${status})`);
  }
}

/** A phase of reads, with the workers' CPU per request while it ran (µs): a figure the machine's other load disturbs less than a rate. */
type GetRun = PhaseResult & { readonly workerUs: number };

async function getRun(cluster: Cluster, path: () => string): Promise<GetRun> {
  const cpu = cpuOf(() => clusterRoles(cluster.pid));
  const result = await phase({ connections, durationS: duration, call: () => ({ method: 'GET', url: cluster.query + path() }) });
  const requests = Object.values(result.statuses).reduce((a, n) => a + n, 0);
  return { ...result, workerUs: requests > 0 ? Math.round(((cpu.end().get('worker') ?? 0) * 1000) / requests) : Number.NaN };
}

interface LagRun {
  readonly seconds: number;
  readonly loadCommands: number;
  readonly loadNon2xx: number;
  readonly loadErrors: number;
  readonly probes: number;
  readonly commandRate: number;
  readonly lagP50: number;
  readonly lagP99: number;
  readonly lagMax: number;
  /** Probes whose command or read did not answer 200, or threw. */
  readonly probeErrors: number;
  /** Probes whose read answered 200 with a document older than the command's position (should never happen). */
  readonly stale: number;
  /** CPU per command while it ran, µs, by role (`worker`, `projector`, `primary`, `nats-server`): the price of the batching that sets the lag. */
  readonly cpuUs: Record<string, number>;
}

/**
 * Commands at LAG_RATE/s for 2 × duration, and beside them a prober: one command every
 * PROBE_EVERY_MS, then a read of that shop with `X-Min-Position` = the command's position.
 * The lag is measured from the command's reply to the read's reply, so it includes one
 * HTTP round trip of the read (which waits for the projector's nudge after the batch that
 * applied the command).
 */
async function lagRun(cluster: Cluster, natsPid: number): Promise<LagRun> {
  const seconds = duration * 2;
  const cpu = cpuOf(() => new Map([...clusterRoles(cluster.pid), ['nats-server', [natsPid]]]));
  const lags: number[] = [];
  let probes = 0;
  let probeCommands = 0;
  let probeErrors = 0;
  let stale = 0;
  const probe = async () => {
    const shop = randomShop();
    probes++;
    try {
      const res = await post(`${cluster.command}/shops/${shop}/change-menu-price`, { menuId: 'm1', price: randomPrice() }, 10_000);
      const reply = (await res.json()) as { position?: number };
      if (res.status !== 200 || typeof reply.position !== 'number') return void probeErrors++;
      probeCommands++;
      const t0 = performance.now();
      const read = await get(`${cluster.query}/shops/${shop}?waitMs=5000`, { 'x-min-position': String(reply.position) }, 10_000);
      const doc = (await read.json()) as { position?: number };
      const lag = performance.now() - t0;
      if (read.status !== 200) return void probeErrors++;
      if (typeof doc.position !== 'number' || doc.position < reply.position) stale++;
      lags.push(lag);
    } catch {
      probeErrors++;
    }
  };

  const started = performance.now();
  // Paced by the load client, which counts a late start in the latency (coordinated omission).
  const load =
    LAG_RATE === 0
      ? sleep(seconds * 1000).then(() => ({ rps: 0, non2xx: 0, errors: 0 }))
      : phase({
          connections,
          durationS: seconds,
          rate: LAG_RATE,
          call: () => ({ method: 'POST', url: `${cluster.command}/shops/${randomShop()}/change-menu-price`, body: { menuId: 'm1', price: randomPrice() } }),
        });
  // Probes start on a fixed schedule (not one after another), so a slow read does not thin them out.
  const inFlight: Promise<void>[] = [];
  const until = started + seconds * 1000;
  for (let next = started; next < until; next += PROBE_EVERY_MS) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(probe());
  }
  const result = await load;
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  const used = cpu.end();
  const commands = Math.round(result.rps * seconds) - result.non2xx - result.errors + probeCommands;
  return {
    cpuUs: Object.fromEntries([...used].map(([role, ms]) => [role, Math.round((ms * 1000) / Math.max(1, commands))])),
    seconds,
    loadCommands: Math.round(result.rps * seconds) - result.non2xx - result.errors,
    loadNon2xx: result.non2xx,
    loadErrors: result.errors,
    probes,
    commandRate: (Math.round(result.rps * seconds) - result.non2xx - result.errors + probeCommands) / elapsed,
    lagP50: percentile(lags, 50),
    lagP99: percentile(lags, 99),
    lagMax: lags.length ? Math.max(...lags) : Number.NaN,
    probeErrors,
    stale,
  };
}

/** Appends REBUILD_SHOPS × REBUILD_VERSIONS commits straight to the stream (`shopHistoryCommit`). */
async function appendHistory(link: NatsLink): Promise<number> {
  const at = new Date().toISOString();
  const commit = (id: string, version: number) => shopHistoryCommit(id, version, at);
  const started = performance.now();
  let batch: Promise<unknown>[] = [];
  for (let s = 0; s < REBUILD_SHOPS; s++) {
    const id = `rb-${s}`;
    for (let v = 1; v <= REBUILD_VERSIONS; v++) {
      batch.push(link.js.publish(eventSubject('shop', id), JSON.stringify(commit(id, v))));
      if (batch.length === 500) {
        await Promise.all(batch);
        batch = [];
      }
    }
  }
  await Promise.all(batch);
  return (REBUILD_SHOPS * REBUILD_VERSIONS) / ((performance.now() - started) / 1000);
}

interface ProjectionStatus {
  readonly name: string;
  readonly generation: number;
  readonly state: string;
  readonly position: number;
}

async function shopDisplayStatus(admin: string): Promise<ProjectionStatus> {
  const res = await get(`${admin}/admin/projections`, {}, 5000);
  const body = (await res.json()) as { projections?: ProjectionStatus[] };
  const status = body.projections?.find((p) => p.name === 'shopDisplay');
  if (res.status !== 200 || !status) throw new Error(`GET /admin/projections: ${res.status} ${JSON.stringify(body)}`);
  return status;
}

/** Polls (bounded) until the live shopDisplay view has reached `position`. */
async function awaitProjected(admin: string, position: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const status = await shopDisplayStatus(admin);
    if (status.position >= position) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`shopDisplay at ${status.position}, not ${position}, after ${timeoutMs} ms`);
    await sleep(20);
  }
}

interface RebuildRun {
  readonly generation: number;
  readonly position: number;
  readonly ms: number;
  readonly eventsPerSec: number;
}

/** One rebuild of shopDisplay into a new generation, timed from the request to the swap. */
async function rebuildRun(admin: string): Promise<RebuildRun> {
  const before = await shopDisplayStatus(admin);
  const started = performance.now();
  const res = await post(`${admin}/admin/projections/shopDisplay/rebuild`, undefined, 5000);
  const body = await res.text();
  if (res.status !== 202) throw new Error(`POST rebuild: ${res.status} ${body}`);
  for (;;) {
    const status = await shopDisplayStatus(admin);
    if (status.generation > before.generation && status.state === 'running') {
      const ms = performance.now() - started;
      return { generation: status.generation, position: status.position, ms, eventsPerSec: status.position / (ms / 1000) };
    }
    if (performance.now() - started > 180_000) throw new Error(`rebuild not done in 180 s: ${JSON.stringify(status)}`);
    await sleep(20);
  }
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

async function main(): Promise<void> {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-bench-nats-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-bench-data-'));
  let nats: Awaited<ReturnType<typeof launchNatsServer>> | undefined;
  let link: NatsLink | undefined;
  let cluster: Cluster | undefined;
  try {
    nats = await launchNatsServer({ port: 0, storeDir });
    link = await connectNats(nats.url, { name: 'bench-reads', timeoutMs: 5000, log: pino({ level: 'silent' }) });
    cluster = await startCluster(nats.url, dataDir, workers, { main: join(import.meta.dirname, 'readsMain.js') });
    const { command, query, admin } = cluster;

    const seedStarted = performance.now();
    const seeded = await seed(command);
    await awaitSeeded(query, seeded);
    console.error(`seeded ${shops} shops up to position ${seeded} in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);

    // Each shop's ETag, and the bare route's copy of its bytes, before anything is measured.
    const etags = new Map<string, string>();
    for (let i = 0; i < shops; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, shops - i) }, async (_, j) => {
          const id = `bench-${i + j}`;
          const [doc, bareDoc] = [await get(`${query}/shops/${id}`), await get(`${query}/bench/bare/${id}`)];
          const [a, b] = [await doc.text(), await bareDoc.text()];
          if (doc.status !== 200 || a !== b) throw new Error(`GET /shops/${id} and the bare route differ: ${doc.status} ${bareDoc.status}`);
          etags.set(id, doc.headers.get('etag')!);
        }),
      );
    }

    // 1. GET /shops/<id> beside the bare route served by the same workers on the same port.
    const bare: GetRun[] = [];
    const shop: GetRun[] = [];
    const revalidating: PhaseResult[] = [];
    const paced: PhaseResult[] = [];
    for (let r = 0; r < (parts.has('reads') ? runs : 0); r++) {
      bare.push(await getRun(cluster, () => `/bench/bare/${randomShop()}`));
      shop.push(await getRun(cluster, () => `/shops/${randomShop()}`));
      revalidating.push(
        await phase({
          connections,
          durationS: duration,
          call: () => {
            const id = randomShop();
            return { method: 'GET', url: `${query}/shops/${id}`, ...(Math.random() < REVALIDATING ? { headers: { 'if-none-match': etags.get(id)! } } : {}) };
          },
        }),
      );
      paced.push(await phase({ connections, durationS: duration, rate: PACED_RATE, call: () => ({ method: 'GET', url: `${query}/shops/${randomShop()}` }) }));
      const [b, g, v, p] = [bare[r]!, shop[r]!, revalidating[r]!, paced[r]!];
      console.error(
        `run ${r + 1}/${runs}: bare ${b.rps.toFixed(0)}/s (worker ${b.workerUs} µs), shop ${g.rps.toFixed(0)}/s (worker ${g.workerUs} µs) p99 ${g.p99} ms, ` +
          `revalidating ${v.rps.toFixed(0)}/s (304: ${v.statuses['304'] ?? 0}), asked ${PACED_RATE}/s: ${p.rps.toFixed(0)}/s p99 ${p.p99} ms`,
      );
    }

    // 2. Projection lag under LAG_RATE commands/s.
    const lag: LagRun[] = [];
    for (let r = 0; r < (parts.has('lag') ? runs : 0); r++) {
      lag.push(await lagRun(cluster, nats.pid));
      const l = lag[r]!;
      const cpuText = Object.entries(l.cpuUs).map(([role, us]) => `${role} ${us}`).join(', ');
      console.error(`lag run ${r + 1}/${runs}: ${l.commandRate.toFixed(0)} commands/s, lag p50 ${fmt(l.lagP50)} ms p99 ${fmt(l.lagP99)} ms max ${fmt(l.lagMax)} ms, probe errors ${l.probeErrors}; CPU per command (µs): ${cpuText}`);
    }

    // 3. Rebuild: grow the stream, let the live view catch up, then rebuild REBUILDS times.
    const rebuilds: RebuildRun[] = [];
    let [appendPerSec, lastSeq, catchUpMs, rebuiltOk] = [Number.NaN, 0, Number.NaN, false];
    if (parts.has('rebuild')) {
      appendPerSec = await appendHistory(link);
      lastSeq = (await link.jsm.streams.info('EVENTS')).state.last_seq;
      catchUpMs = await awaitProjected(admin, lastSeq, 120_000);
      console.error(`appended ${REBUILD_SHOPS * REBUILD_VERSIONS} commits at ${appendPerSec.toFixed(0)}/s; stream at ${lastSeq}; live view caught up ${catchUpMs.toFixed(0)} ms after`);
      for (let r = 0; r < REBUILDS; r++) {
        rebuilds.push(await rebuildRun(admin));
        const b = rebuilds[r]!;
        console.error(`rebuild ${r + 1}/${REBUILDS}: generation ${b.generation}, ${b.position} positions in ${b.ms.toFixed(0)} ms = ${b.eventsPerSec.toFixed(0)}/s`);
      }
      // The rebuilt view must still serve a shop from the extra history at its last version.
      const check = await get(`${query}/shops/rb-${REBUILD_SHOPS - 1}`);
      const checkDoc = (await check.json()) as { version?: number };
      rebuiltOk = check.status === 200 && checkDoc.version === REBUILD_VERSIONS;
    }

    await cluster.stop();
    cluster = undefined;

    const summary = {
      bareRps: median(bare.map((b) => b.rps)),
      shopRps: median(shop.map((s) => s.rps)),
      bareWorkerUs: median(bare.map((b) => b.workerUs)),
      shopWorkerUs: median(shop.map((s) => s.workerUs)),
      shopP50Ms: median(shop.map((s) => s.p50)),
      shopP99Ms: median(shop.map((s) => s.p99)),
      revalidatingRps: median(revalidating.map((s) => s.rps)),
      revalidatingP99Ms: median(revalidating.map((s) => s.p99)),
      notModified: revalidating.reduce((s, r) => s + (r.statuses['304'] ?? 0), 0),
      revalidatingRequests: revalidating.reduce((s, r) => s + Object.values(r.statuses).reduce((a, n) => a + n, 0), 0),
      pacedRps: median(paced.map((s) => s.rps)),
      pacedP50Ms: median(paced.map((s) => s.p50)),
      pacedP99Ms: median(paced.map((s) => s.p99)),
      getNon2xx: [...shop, ...bare, ...paced].reduce((s, r) => s + r.non2xx, 0) + revalidating.reduce((s, r) => s + r.non2xx - (r.statuses['304'] ?? 0), 0),
      getErrors: [...shop, ...bare, ...paced, ...revalidating].reduce((s, r) => s + r.errors, 0),
      commandRate: median(lag.map((l) => l.commandRate)),
      lagP50Ms: median(lag.map((l) => l.lagP50)),
      lagP99Ms: median(lag.map((l) => l.lagP99)),
      lagMaxMs: Math.max(...lag.map((l) => l.lagMax)),
      lagProbes: lag.reduce((s, l) => s + l.probes, 0),
      lagProbeErrors: lag.reduce((s, l) => s + l.probeErrors, 0),
      lagStale: lag.reduce((s, l) => s + l.stale, 0),
      lagCpuUs: Object.fromEntries(['worker', 'projector', 'primary', 'nats-server'].map((role) => [role, median(lag.map((l) => l.cpuUs[role] ?? 0))])),
      lagLoadNon2xx: lag.reduce((s, l) => s + l.loadNon2xx, 0),
      lagLoadErrors: lag.reduce((s, l) => s + l.loadErrors, 0),
      rebuildEventsPerSec: median(rebuilds.map((b) => b.eventsPerSec)),
      rebuildPositions: rebuilds[rebuilds.length - 1]?.position ?? 0,
      rebuiltOk,
    };
    // Each row with the part that measured it: a part not run prints nothing.
    const rows: [string, string, string][] = [
      ['reads', `bare route sending the same bytes from memory (query port), ${connections} connections`, `${summary.bareRps.toFixed(0)} req/s`],
      ['reads', `GET /shops/<id>, ${shops} shops, ${connections} connections`, `${summary.shopRps.toFixed(0)} req/s`],
      ['reads', 'ratio shop GET / bare route (target ≥ 0.9)', (summary.shopRps / summary.bareRps).toFixed(2)],
      ['reads', 'worker CPU per request: bare route / shop GET (their ratio)', `${summary.bareWorkerUs} / ${summary.shopWorkerUs} µs (${(summary.bareWorkerUs / summary.shopWorkerUs).toFixed(2)})`],
      ['reads', 'shop GET latency p50 / p99 (target p99 ≤ 10 ms)', `${summary.shopP50Ms} ms / ${summary.shopP99Ms} ms`],
      ['reads', `GET /shops/<id>, ${REVALIDATING * 100}% with If-None-Match`, `${summary.revalidatingRps.toFixed(0)} req/s, p99 ${summary.revalidatingP99Ms} ms, ${summary.notModified} of ${summary.revalidatingRequests} answered 304`],
      ['reads', `GET /shops/<id> asked for ${PACED_RATE.toLocaleString('en-US')}/s`, `${summary.pacedRps.toFixed(0)} req/s, p50 ${summary.pacedP50Ms} ms, p99 ${summary.pacedP99Ms} ms`],
      ['reads', 'GET non-2xx (304s aside) / errors (target 0)', `${summary.getNon2xx} / ${summary.getErrors}`],
      ['lag', `commands/s achieved in the lag phase (asked ${LAG_RATE} + probes)`, summary.commandRate.toFixed(0)],
      ['lag', 'projection lag p50 / p99 / max (targets ≤ 5 / ≤ 50 ms; incl. one read round trip)', `${fmt(summary.lagP50Ms)} / ${fmt(summary.lagP99Ms)} / ${fmt(summary.lagMaxMs)} ms`],
      ['lag', 'lag probes / probe errors / stale reads (target 0 / 0)', `${summary.lagProbes} / ${summary.lagProbeErrors} / ${summary.lagStale}`],
      ['lag', 'lag-phase load non-2xx / errors (target 0)', `${summary.lagLoadNon2xx} / ${summary.lagLoadErrors}`],
      ['lag', 'CPU per command in the lag phase: workers / projector / primary / nats-server', `${summary.lagCpuUs.worker} / ${summary.lagCpuUs.projector} / ${summary.lagCpuUs.primary} / ${summary.lagCpuUs['nats-server']} µs`],
      ['rebuild', `rebuild shopDisplay, ${summary.rebuildPositions} positions (target ≥ 50,000/s)`, `${summary.rebuildEventsPerSec.toFixed(0)} events/s`],
      ['rebuild', 'rebuilt view serves the appended history', summary.rebuiltOk ? 'yes' : 'NO'],
    ];
    printTable(`${[...parts].join(', ')} (medians)`, rows.filter(([part]) => parts.has(part)).map(([, row, value]) => [row, value]));
    writeResult('reads', { runs, duration, connections, shops, workers, bare, shop, revalidating, paced, lag, appendPerSec, lastSeq, catchUpMs, rebuilds, summary });
  } finally {
    await cluster?.stop().catch(() => undefined);
    await link?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    rmSync(storeDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
