import { httpClient, type Call } from './client.js';
import { recorder, type Summary } from './recorder.js';
import { orderQueues, scenarios, seed, writeThenRead, type RunContext, type Target } from './scenarios.js';
import { cpuOf } from './procs.js';

/** One load run's settings. */
export interface LoadOptions {
  readonly scenario: string;
  readonly durationS: number;
  readonly connections: number;
  readonly shops: number;
  /** Delivered orders with a review seeded per shop. */
  readonly orders: number;
  /** Steps per second across all connections; unlimited when undefined. */
  readonly rate?: number;
  readonly hot: number;
  /** Customers the orders are placed for, each as likely (default 1,000). */
  readonly customers?: number;
  /** Seconds of load before the measured window: JIT, connections and actors warm up. */
  readonly warmupS: number;
  /** Prints a line a second while the run goes. */
  readonly progress: boolean;
}

/** What one run measured, with its settings. */
export interface LoadResult {
  readonly target: string;
  readonly options: LoadOptions;
  readonly at: string;
  readonly summary: Summary & { readonly cpu?: CpuPerRequest; readonly reactions?: ReactionLag };
}

/**
 * How far the target's reactions fell behind the event store, in commits (positions): the most seen in
 * the measured window (read once a second), at its end, and how long after it they caught
 * up (undefined: not within `REACTIONS_CATCH_UP_S`).
 */
export interface ReactionLag {
  readonly maxCommits: number;
  readonly atEndCommits: number;
  readonly caughtUpS: number | undefined;
}

/** How long a run waits, after its window, for the target's reactions to catch up. */
const REACTIONS_CATCH_UP_S = 60;

/** CPU per successful request by process role, and over converge's own processes, in µs. */
export interface CpuPerRequest {
  readonly perRequestUs: Record<string, number>;
  readonly convergeUs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(line + '\n');

/**
 * Seeds fresh shops on `target`, then runs the scenario for `durationS` seconds on
 * `connections` connections (paced to `rate` steps/s when given), with a lag probe of 10
 * writes a second beside it: each probe renames a shop and reads it back with
 * `X-Min-Position`. Stops by itself and closes every socket it opened.
 */
export async function runLoad(target: Target, options: LoadOptions): Promise<LoadResult> {
  const scenario = scenarios[options.scenario];
  if (!scenario) throw new Error(`unknown scenario ${options.scenario}`);
  // The lag probe gets its own sockets, so it does not queue behind the load.
  const client = httpClient(options.connections);
  const side = httpClient(8);
  const rec = recorder();
  // The probe's own requests are not part of the scenario's figures; only its lag is reported.
  const probeRec = recorder();
  const prefix = `L${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}-`;
  let ticker: ReturnType<typeof setInterval> | undefined;
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    const seeded = Date.now();
    if (options.progress) log(`seeding ${options.shops} shops on ${target.name} (${options.orders} orders and reviews each)…`);
    const shops = await seed({ target, client, rec, hot: options.hot, customers: options.customers ?? 1000, prefix }, options.shops, options.orders);
    if (options.progress) log(`seeded in ${((Date.now() - seeded) / 1000).toFixed(1)} s; running ${scenario.name} for ${options.warmupS} s of warm-up, then ${options.durationS} s measured`);
    const ctx: RunContext = { target, client, rec, shops, hot: options.hot, customers: options.customers ?? 1000, prefix, orders: orderQueues() };
    const probeCtx: RunContext = { ...ctx, client: side, rec: probeRec };
    const probeShop = shops[shops.length - 1]!;

    const until = performance.now() + (options.warmupS + options.durationS) * 1000;
    let cpu: ReturnType<typeof cpuOf> | undefined;
    const warm = sleep(options.warmupS * 1000).then(() => {
      rec.start(options.durationS);
      probeRec.start(options.durationS);
      if (target.roles) cpu = cpuOf(target.roles);
    });
    const loops = drive(options.connections, until, options.rate, () => {
      const mine: RunContext = options.rate ? { ...ctx, pace: { lateMs: 0 } } : ctx;
      return (lateMs) => {
        if (mine.pace) mine.pace.lateMs = lateMs;
        return scenario.step(mine);
      };
    });
    const probe = (async () => {
      if (scenario.name === 'read-your-writes') return;
      while (performance.now() < until) {
        const next = performance.now() + 100;
        await writeThenRead(probeCtx, probeShop, 'probe');
        await sleep(next - performance.now());
      }
    })();
    // One line per measured second, each once: a timer that fires late (a loaded machine) or
    // after the run has ended must not drop a second, so the end of the run prints what is left.
    let printed = -1;
    const progress = (upTo: number) => {
      for (; options.progress && printed < Math.min(upTo, options.durationS - 1); printed++) {
        const s = rec.secondAt(printed + 1);
        if (s) log(`[${String(s.t + 1).padStart(3)} s/${options.durationS} s] ${s.requests.toLocaleString('en-US').padStart(7)} req/s  p50 ${s.p50.toFixed(1)} ms  p99 ${s.p99.toFixed(1)} ms  errors ${s.errors}`);
      }
    };
    ticker = setInterval(() => progress(rec.completeSeconds() - 1), 1000);
    let reactionsMax = 0;
    let ended = false;
    if (target.reactionLag) {
      const read = target.reactionLag;
      void warm.then(() => {
        if (ended) return;
        sampler = setInterval(() => void read().then((n) => (reactionsMax = Math.max(reactionsMax, n)), () => undefined), 1000);
        sampler.unref();
      });
    }
    await Promise.all([loops, probe, warm]).finally(() => {
      ended = true;
      clearInterval(sampler);
    });
    progress(options.durationS - 1);
    const used = cpu?.end();
    const reactions = target.reactionLag && (await reactionsAfter(target.reactionLag, reactionsMax, options.progress).catch((err: unknown) => {
      log(`the reactions' lag could not be read: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }));
    const lag = (scenario.name === 'read-your-writes' ? rec : probeRec).summary(options.durationS).lag;
    const base = rec.summary(options.durationS);
    const summary = { ...base, lag, ...(used ? { cpu: cpuPerRequest(used, base.okThroughput * options.durationS) } : {}), ...(reactions ? { reactions } : {}) };
    return { target: target.name, options, at: new Date().toISOString(), summary };
  } finally {
    clearInterval(ticker);
    clearInterval(sampler);
    client.close();
    side.close();
  }
}

/** The reactions' lag at the end of the window, and how long they took to catch up after it (read every 250 ms). */
async function reactionsAfter(read: () => Promise<number>, maxCommits: number, progress: boolean): Promise<ReactionLag> {
  const ended = performance.now();
  const atEndCommits = await read();
  let lag = atEndCommits;
  if (lag > 0 && progress) log(`the reactions are ${lag.toLocaleString('en-US')} commits behind; waiting up to ${REACTIONS_CATCH_UP_S} s for them to catch up…`);
  while (lag > 0 && performance.now() - ended < REACTIONS_CATCH_UP_S * 1000) {
    await sleep(250);
    lag = await read();
  }
  const caughtUpS = lag === 0 ? Math.round((performance.now() - ended) / 100) / 10 : undefined;
  return { maxCommits: Math.max(maxCommits, atEndCommits), atEndCommits, caughtUpS };
}

/**
 * Runs `connections` loops until `until` (a `performance.now()` time), each calling its
 * step again as soon as the last one is done. Under `rate` (steps/s across all loops), the
 * steps take slots of one fixed schedule instead, and each step is told how late it
 * started against its slot: counting that wait in the step's first latency corrects the
 * figures for coordinated omission, so a system that falls behind the schedule shows it.
 */
export async function drive(
  connections: number,
  until: number,
  rate: number | undefined,
  loop: () => (lateMs: number) => Promise<unknown>,
): Promise<void> {
  const gap = rate ? 1000 / rate : 0;
  const start = performance.now();
  let slot = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const step = loop();
      while (performance.now() < until) {
        let late = 0;
        if (gap) {
          const wait = start + slot++ * gap - performance.now();
          if (wait > 0) await sleep(wait);
          if (performance.now() >= until) break;
          late = Math.max(0, -wait);
        }
        await step(late);
      }
    }),
  );
}

/** A bench phase's figures: replies per second, latency in ms, and what went wrong. */
export interface PhaseResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Replies with a status other than 2xx. */
  readonly non2xx: number;
  /** Requests with no reply at all (socket error or timeout). */
  readonly errors: number;
  /** Replies per status (`0 <error>` for none). */
  readonly statuses: Readonly<Record<string, number>>;
}

/**
 * One bench phase with the load tool's client: `call()` on `connections` connections for
 * `durationS` seconds, back to back or paced to `rate` requests/s (corrected for
 * coordinated omission, as `drive` says). Stops by itself and closes its sockets.
 */
export async function phase(opts: { connections: number; durationS: number; rate?: number; call: () => Call }): Promise<PhaseResult> {
  const client = httpClient(opts.connections);
  const rec = recorder();
  try {
    rec.start(opts.durationS);
    await drive(opts.connections, performance.now() + opts.durationS * 1000, opts.rate, () => async (lateMs) => {
      const answer = await client.send(opts.call());
      rec.record('request', lateMs > 0 ? { ...answer, ms: answer.ms + lateMs } : answer);
    });
    const s = rec.summary(opts.durationS);
    const count = (match: (status: string) => boolean) => Object.entries(s.statuses).filter(([k]) => match(k)).reduce((sum, [, n]) => sum + n, 0);
    return {
      rps: s.throughput,
      p50: s.latency.p50,
      p99: s.latency.p99,
      non2xx: count((k) => !/^2\d\d$/.test(k) && !k.startsWith('0 ')),
      errors: count((k) => k.startsWith('0 ')),
      statuses: s.statuses,
    };
  } finally {
    client.close();
  }
}

/**
 * CPU per successful request, by role, from the ms each role used over the window: the
 * cost of one answered request, wherever in the system it was spent. `convergeUs` sums
 * converge's own processes (not nats-server).
 */
function cpuPerRequest(usedMs: Map<string, number>, answered: number): CpuPerRequest {
  const per = (ms: number) => (answered > 0 ? Math.round((ms * 1000) / answered) : 0);
  const perRequestUs = Object.fromEntries([...usedMs].map(([role, ms]) => [role, per(ms)]));
  const convergeUs = per([...usedMs].filter(([role]) => role !== 'nats-server').reduce((sum, [, ms]) => sum + ms, 0));
  return { perRequestUs, convergeUs };
}

/** The run as a few readable lines. */
export function describe(result: LoadResult): string {
  const { summary: s, options: o } = result;
  const lines = [
    `${o.scenario} on ${result.target}: ${o.connections} connections, ${o.durationS} s${o.rate ? `, paced to ${o.rate} steps/s` : ''}, ${o.shops} shops`,
    `  throughput   ${s.throughput.toLocaleString('en-US')} req/s (2xx: ${s.okThroughput.toLocaleString('en-US')}/s), ${s.requests.toLocaleString('en-US')} requests`,
    `  latency      p50 ${s.latency.p50} ms  p90 ${s.latency.p90} ms  p99 ${s.latency.p99} ms  max ${s.latency.max} ms`,
  ];
  for (const [kind, p] of Object.entries(s.byKind)) {
    lines.push(`    ${kind.padEnd(22)} ${String(p.perSec).padStart(8)}/s  p50 ${p.p50} ms  p99 ${p.p99} ms  max ${p.max} ms`);
  }
  lines.push(`  statuses     ${Object.entries(s.statuses).map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  lines.push(`  errors       ${s.errors} (no reply or 5xx)`);
  lines.push(`  write → read visible (lag): p50 ${s.lag.p50} ms  p90 ${s.lag.p90} ms  p99 ${s.lag.p99} ms  max ${s.lag.max} ms over ${s.lag.count} probes, ${s.lag.stale} stale`);
  if (s.reactions) {
    const r = s.reactions;
    const after = r.caughtUpS === undefined ? `still behind ${REACTIONS_CATCH_UP_S} s after it` : r.atEndCommits === 0 ? 'caught up' : `caught up ${r.caughtUpS} s after it`;
    lines.push(`  reactions    lag at most ${r.maxCommits.toLocaleString('en-US')} commits during the run, ${r.atEndCommits.toLocaleString('en-US')} at its end; ${after}`);
  }
  if (s.cpu) {
    const roles = Object.entries(s.cpu.perRequestUs).map(([role, us]) => `${role} ${us} µs`).join(', ');
    lines.push(`  CPU per 2xx  ${s.cpu.convergeUs} µs in converge's processes (${roles}), measured from /proc over the window`);
  }
  return lines.join('\n');
}
