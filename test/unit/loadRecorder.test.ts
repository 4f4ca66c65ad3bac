import t from 'tap';
import { barChart, runChart } from '../../load/chart.js';
import { origin } from '../../load/profile.js';
import { latencies, recorder } from '../../load/recorder.js';
import { drive } from '../../load/run.js';

t.test('latencies report each percentile within 0.1%, in constant memory', async (t) => {
  const h = latencies();
  for (let i = 100; i >= 1; i--) h.record(i); // 100 … 1 ms, unsorted
  const p = h.percentiles();
  t.equal(p.count, 100);
  for (const [name, want] of [['p50', 50], ['p90', 90], ['p99', 99], ['max', 100]] as const) {
    t.ok(Math.abs(p[name] - want) <= want * 0.001 + 0.01, `${name} ${p[name]} is ${want} within 0.1%`);
  }
  t.same(latencies().percentiles(), { count: 0, p50: 0, p90: 0, p99: 0, max: 0 }, 'an empty run reports zeros, not NaN');
  const one = latencies();
  one.record(7);
  t.same(one.percentiles(), { count: 1, p50: 7, p90: 7, p99: 7, max: 7 });
  const many = latencies();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 2_000_000; i++) many.record(1 + (i % 5000) / 10);
  t.equal(many.count, 2_000_000);
  // A list of them would take 16 MB.
  t.ok(process.memoryUsage().heapUsed - before < 4_000_000, 'recording 2,000,000 latencies does not keep them');
});

t.test('the recorder counts requests sent in the measured window and names each status by its code', async (t) => {
  const rec = recorder();
  rec.record('seed', { status: 200, body: '', ms: 1 });
  rec.lag(1000, false);
  rec.start(0.3);
  await new Promise((r) => setTimeout(r, 50));
  rec.record('sent before the window', { status: 200, body: '', ms: 5_000 });
  rec.record('GET', { status: 200, body: '{}', ms: 2 });
  rec.record('GET', { status: 200, body: '{}', ms: 4 });
  rec.record('POST', { status: 422, body: '{"error":"rejected","reason":"shop_closed"}', ms: 3 });
  rec.record('POST', { status: 400, body: '{"code":"invalid_command"}', ms: 1 });
  rec.record('POST', { status: 503, body: '{"error":"store_unavailable"}', ms: 9 });
  rec.record('POST', { status: 0, body: '', ms: 30 });
  rec.lag(5, true);
  rec.lag(7, false);
  await new Promise((r) => setTimeout(r, 300));
  rec.record('sent after the window', { status: 200, body: '', ms: 1 });
  rec.record('sent in the window, answered late', { status: 200, body: '', ms: 150 });
  const s = rec.summary(0.3);
  t.equal(s.requests, 7, 'only requests sent inside the window count, however late their answer');
  t.equal(s.throughput, 23.33, 'divided by the window');
  t.equal(s.okThroughput, 10, 'only 2xx count as served');
  t.same(s.statuses, {
    '0 no reply (socket error or timeout)': 1,
    '200': 3,
    '400 invalid_command': 1,
    '422 rejected/shop_closed': 1,
    '503 store_unavailable': 1,
  });
  t.equal(s.errors, 2, 'no reply and 5xx are errors; 4xx are answers');
  t.same(Object.keys(s.byKind).sort(), ['GET', 'POST', 'sent in the window, answered late']);
  t.equal(s.byKind.GET!.p50, 2, 'the median of 2 and 4 by nearest rank');
  t.same({ count: s.lag.count, stale: s.lag.stale, max: s.lag.max }, { count: 2, stale: 1, max: 7 });
  t.equal(s.seconds.length, 1, 'one bucket per second of the window');
});

t.test('charts are standalone SVG with escaped labels', async (t) => {
  const svg = runChart('reads <on> converge & co', [
    { t: 0, requests: 100, p50: 1, p99: 5, errors: 0 },
    { t: 1, requests: 120, p50: 1.5, p99: 6, errors: 0 },
  ]);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /reads &lt;on&gt; converge &amp; co/);
  t.equal((svg.match(/<polyline/g) ?? []).length, 3, 'throughput, p50 and p99');
  const bars = barChart('throughput', '/s', [
    { label: 'reads', values: [{ name: 'converge', value: 1000 }, { name: 'crud', value: 100 }] },
  ]);
  t.equal((bars.match(/<rect x=/g) ?? []).length, 2, 'one bar per target');
  t.match(bars, />1,000 \/s</);
});

t.test('profile frames are grouped by package, node module or project file', async (t) => {
  t.equal(origin('file:///w/node_modules/@nats-io/nats-core/lib/nats.js', 'request'), '@nats-io/nats-core');
  t.equal(origin('file:///w/node_modules/xstate/dist/x.js', 'microstep'), 'xstate');
  t.equal(origin('node:internal/streams/writable', 'write'), 'node:internal');
  t.equal(origin('file:///w/dist/src/actorHost.js', 'obtain'), 'src/actorHost.js');
  t.equal(origin('', '(garbage collector)'), '(garbage collector)');
});

t.test('paced steps that fall behind their schedule are told how late they start (coordinated omission)', async (t) => {
  const lates: number[] = [];
  // 100 steps/s on one connection, each step taking 30 ms: every step starts later than its slot.
  await drive(1, performance.now() + 400, 100, () => async (late) => {
    lates.push(late);
    await new Promise((r) => setTimeout(r, 30));
  });
  t.ok(lates.length >= 5 && lates.length <= 14, `${lates.length} steps in 400 ms`);
  t.ok(lates.at(-1)! > 100, `the last step started ${lates.at(-1)} ms after its slot`);
  t.ok(lates.every((late, i) => i === 0 || late >= lates[i - 1]!), 'the backlog only grows');
  const unpaced: number[] = [];
  await drive(2, performance.now() + 100, undefined, () => async (late) => {
    unpaced.push(late);
    await new Promise((r) => setTimeout(r, 10));
  });
  t.ok(unpaced.length > 0 && unpaced.every((late) => late === 0), 'back-to-back steps are never late');
});
