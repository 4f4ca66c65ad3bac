import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { LoadResult } from '../../load/run.js';
import { freePort } from '../../src/nats/server.js';
import { tempDir } from '../helpers/nats.js';

/** The built tool, as `npm run load` runs it (`npm test` builds first). */
const tool = join(import.meta.dirname, '../../dist/load/main.js');

/** Runs `npm run load`'s entry point and resolves with its exit code and output. */
function load(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tool, ...args], { timeout: 90_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function written(dir: string): { result: LoadResult; svg: string } {
  const files = readdirSync(dir);
  const json = files.find((f) => f.endsWith('.json'));
  const svg = files.find((f) => f.endsWith('.svg'));
  if (!json || !svg) throw new Error(`expected a .json and an .svg in ${dir}, found ${files.join(', ')}`);
  return { result: JSON.parse(readFileSync(join(dir, json), 'utf8')) as LoadResult, svg: readFileSync(join(dir, svg), 'utf8') };
}

t.test('the load tool runs a scenario against a cluster it starts, then reports, writes JSON and a chart, and stops', async (t) => {
  const out = tempDir(t);
  const run = await load(['commands', '--spawn', '--duration', '2', '--warmup', '0', '--shops', '20', '--orders', '1', '--customers', '5000', '--connections', '8', '--out', out]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /throughput\s+[\d,.]+ req\/s/, 'prints throughput');
  t.match(run.stdout, /latency\s+p50 [\d.]+ ms\s+p90 [\d.]+ ms\s+p99 [\d.]+ ms\s+max/, 'prints latency percentiles');
  t.match(run.stdout, /write → read visible \(lag\): p50/, 'prints the lag distribution');
  t.match(run.stderr, /\[\s*\d s\/2 s\]\s+[\d,]+ req\/s/, 'shows progress while it runs');
  t.match(run.stdout, /reactions\s+lag at most [\d,]+ commits during the run, [\d,]+ at its end; caught up/, 'prints how far the reactions fell behind, and that they caught up');
  const { result, svg } = written(out);
  t.match(result.summary.reactions, { maxCommits: Number, atEndCommits: Number, caughtUpS: Number }, 'and records it');
  t.ok(result.summary.requests > 50, `it sent load (${result.summary.requests} requests)`);
  t.equal(result.summary.errors, 0, 'no request failed');
  t.ok((result.summary.statuses['200'] ?? 0) > 50, 'answers are counted by status');
  t.ok(result.summary.byKind['place order'], 'orders were placed');
  t.equal(result.options.customers, 5000, 'for the customers asked for');
  t.ok(result.summary.lag.count >= 5, 'the lag probe ran');
  t.equal(result.summary.lag.stale, 0, 'no probe read missed its write');
  t.match(svg, /^<svg[^>]*>[\s\S]*<polyline[\s\S]*<\/svg>\n$/, 'the chart is an SVG with lines');
});

t.test('read-your-writes: every read after a write shows it', async (t) => {
  const out = tempDir(t);
  const run = await load(['read-your-writes', '--spawn', '--duration', '2', '--warmup', '0', '--shops', '20', '--orders', '0', '--connections', '8', '--out', out]);
  t.equal(run.code, 0, run.stderr);
  const { result } = written(out);
  t.ok(result.summary.lag.count > 50, `pairs were measured (${result.summary.lag.count})`);
  t.equal(result.summary.lag.stale, 0, 'no stale read');
  const writes = result.summary.byKind['ryw: write']?.count ?? 0;
  const reads = result.summary.byKind['ryw: read']?.count ?? 0;
  // A pair can straddle an edge of the window (its write counted, its read not, or the other
  // way round): at most one per connection at each edge.
  t.ok(writes > 50 && Math.abs(writes - reads) <= 8, `each write was read back (${writes} writes, ${reads} reads)`);
  // A lag is counted by its write's reply time and a read by its send time, so a pair whose
  // reply fell just before the window has its read counted and not its lag: again at most
  // one per connection.
  const lags = result.summary.lag.count;
  t.ok(lags <= reads && reads - lags <= 8, `every counted read is a lag measurement, but for the window's edge (${lags} lags, ${reads} reads)`);
});

t.test('bad arguments and a missing system exit 2 with a reason; a target off this machine is refused', async (t) => {
  const none = await load(['nope']);
  t.equal(none.code, 2);
  t.match(none.stderr, /unknown scenario nope/);
  t.match((await load(['reads', '--duration', '0'])).stderr, /--duration must be a whole number/);
  t.match((await load(['commands', '--customers', 'many'])).stderr, /--customers must be a whole number/);
  t.match((await load(['reads', '--target', 'mongo'])).stderr, /unknown target mongo/);
  const port = await freePort();
  const absent = await load(['reads', '--command-url', `http://127.0.0.1:${port}`]);
  t.equal(absent.code, 2);
  t.match(absent.stderr, /nothing ready at .*npm start.*--spawn/);
  const remote = await load(['reads', '--command-url', 'http://10.1.2.3:8080']);
  t.equal(remote.code, 1);
  t.match(remote.stderr, /only talks to http:\/\/127\.0\.0\.1/);
});
