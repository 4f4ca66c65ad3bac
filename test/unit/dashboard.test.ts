import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics, watchActors, watchPartitions, watchReactions, watchReadSide } from '../../src/observe/metrics.js';

const root = join(import.meta.dirname, '../..');

t.test('the Grafana dashboard and the README charts only metrics converge exports', async (t) => {
  const m = createMetrics();
  watchActors(m, { inFlight: 0, size: 0, awake: 0 });
  watchPartitions(m, () => 0);
  watchReadSide(m, () => ({ projections: [], lastPosition: 0, notifierLagEvents: 0 }), async () => []);
  // A process with its instances: every reaction gauge has a sample.
  watchReactions(m, () => [{ name: 'p', kind: 'process', state: 'running', lagEvents: 0, parked: 0, instances: { open: 0, timersPending: 0 } }]);
  const exported = new Set(
    (await m.registry.getMetricsAsJSON()).flatMap((metric) =>
      String(metric.type) === 'histogram' ? ['', '_bucket', '_count', '_sum'].map((s) => metric.name + s) : [metric.name],
    ),
  );
  const dashboard = readFileSync(join(root, 'docs/grafana-dashboard.json'), 'utf8');
  const charted = new Set([...dashboard.matchAll(/\b((?:converge|process|nodejs)_[a-z0-9_]+)/g)].map((x) => x[1]!));
  t.ok(charted.size > 10, `the dashboard charts ${charted.size} metrics`);
  t.same([...charted].filter((n) => !exported.has(n)), [], 'every metric the dashboard names exists');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const named = new Set([...readme.matchAll(/`(converge_[a-z0-9_]+)`/g)].map((x) => x[1]!));
  t.same([...named].filter((n) => !exported.has(n)), [], 'every converge_ metric the README names exists');
});
