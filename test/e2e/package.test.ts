import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

t.test('the package exports the public API and the testing kit by name', async (t) => {
  // Node resolves a package's own name through its `exports`, as an installed copy would.
  const api = await import('@converge-es/converge');
  for (const name of ['defineAggregate', 'defineProjection', 'defineRoutes', 'runConverge', 'emit', 'reject', 'sendError', 'Page', 'IdParams']) {
    t.type((api as Record<string, unknown>)[name], name === 'IdParams' ? 'object' : 'function', name);
  }
  const testing = await import('@converge-es/converge/testing');
  t.type(testing.deciderSpec, 'function', 'deciderSpec');
  t.type(testing.projectionSpec, 'function', 'projectionSpec');
});

t.test('the packed tarball holds the built runtime and its docs, not the app, tests or baselines', async (t) => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: process.cwd() });
  const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
  t.ok(files.includes('dist/src/index.js') && files.includes('dist/src/testing.js'), 'the two entries');
  t.ok(files.includes('dist/src/host/cli.js'), 'the bin');
  t.same(files.filter((f) => !/^(dist\/src\/|docs\/architecture\.md$|README\.md$|package\.json$)/.test(f)), [], 'nothing else');
  t.same(files.filter((f) => /(^|\/)(test|baselines|actors|projections|examples)\//.test(f)), [], 'no test, baseline or reference-app file');
});
