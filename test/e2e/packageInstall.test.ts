import t from 'tap';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// converge as a stranger meets it: the packed tarball installed into an empty project of their
// own (test/e2e/fixtures/strangerDomain), whose strict tsconfig checks every declaration file
// (`skipLibCheck: false`), compiling and running a small domain that imports converge by
// package name only, and the README's code blocks beside it.

const repo = join(import.meta.dirname, '../..');
const fixture = join(import.meta.dirname, 'fixtures/strangerDomain');
const tsc = join(repo, 'node_modules/typescript/bin/tsc');
const ours = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  readonly dependencies: Record<string, string>;
  readonly devDependencies: Record<string, string>;
};

interface Outcome {
  readonly code: number;
  /** stdout and stderr together, as a person at the terminal reads them. */
  readonly output: string;
}

/** Runs a command to its end and answers its exit code and output, failing or not. */
function run(command: string, args: readonly string[], cwd: string): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

// Packing, installing and a compile that checks all of TypeBox's declarations take about a minute.
t.setTimeout(240_000);
const tmp = mkdtempSync(join(tmpdir(), 'converge-stranger-'));
const project = join(tmp, 'project');
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

let tarball = '';
t.before(async () => {
  // `npm test` has built dist/*.js; the declarations are built here, and `prepack` is skipped
  // because it rebuilds dist/ while the tests running beside this one execute it.
  const lib = await run(process.execPath, [tsc, '-p', 'tsconfig.lib.json'], repo);
  if (lib.code !== 0) throw new Error(`building the declarations failed:\n${lib.output}`);
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], repo);
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.output}`);
  tarball = join(tmp, readdirSync(tmp).find((f) => f.endsWith('.tgz'))!);
  cpSync(fixture, project, { recursive: true });
  for (const block of readmeBlocks()) writeFileSync(join(project, block.file), block.code);
});

/**
 * The README's TypeScript blocks that name their file (`<!-- file: cart.ts -->` on the line
 * before the block): the code a reader copies, compiled here as they would compile it.
 */
function readmeBlocks(): Array<{ file: string; code: string }> {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  return [...readme.matchAll(/<!-- file: ([\w.]+) -->\n```ts\n([\s\S]*?)\n```/g)].map((m) => ({ file: m[1]!, code: `${m[2]!}\n` }));
}

t.test('the README names the files of its code blocks, so that all of them are compiled here', async (t) => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const named = readmeBlocks().map((b) => b.file);
  t.ok(named.length >= 6, `the README's blocks: ${named.join(', ')}`);
  t.equal(new Set(named).size, named.length, 'each file once');
  const sections = ['## Write your own aggregate and view', '## React to events: reactors, processes and timers'].map((h) => readme.indexOf(h));
  const between = readme.slice(sections[0], readme.indexOf('\n## ', sections[1]! + 5));
  t.equal((between.match(/```ts\n/g) ?? []).length, (between.match(/<!-- file: /g) ?? []).length, 'every TypeScript block of those sections names its file');
});

t.test('the packed tarball installs into an empty project on this Node with no engine warning', async (t) => {
  // What the domain imports besides converge is the stranger's own dependency, as it would be.
  const install = await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tarball,
      `typebox@${ours.dependencies['typebox']}`,
      `fastify@${ours.dependencies['fastify']}`,
      `@types/node@${ours.devDependencies['@types/node']}`,
    ],
    project,
  );
  t.equal(install.code, 0, 'npm install succeeds', { output: install.output });
  t.notMatch(install.output, /EBADENGINE/, 'no dependency asks for a newer Node than this one');
});

t.test("the stranger's strict project compiles against the installed declarations, which name no nats.js type", async (t) => {
  const compile = await run(process.execPath, [tsc, '-p', project, '--listFiles'], project);
  const errors = compile.output.split('\n').filter((line) => line.includes('error TS'));
  t.same(errors, [], 'no compile error');
  t.equal(compile.code, 0, 'tsc exits 0', { output: compile.output });
  const nats = compile.output.split('\n').filter((line) => line.includes('/node_modules/@nats-io/'));
  t.same(nats, [], 'no declaration of @nats-io/* is in the program');
  t.ok(compile.output.includes('/node_modules/@converge-es/converge/dist/src/testing.d.ts'), 'converge was read from the installed package');
  for (const block of readmeBlocks()) t.ok(compile.output.includes(`/project/${block.file}`), `the README's ${block.file} is in the program`);
});

t.test("the README's test blocks run and pass against the installed package", async (t) => {
  for (const [file, count] of [['cart.test.js', 3], ['cartExpiry.test.js', 3]] as const) {
    const tests = await run(process.execPath, ['--test', join(project, 'dist', file)], project);
    t.equal(tests.code, 0, `node --test ${file} passes`, { output: tests.output });
    t.match(tests.output, new RegExp(`# pass ${count}\\b`), `its ${count} tests ran`);
  }
});

t.test('the compiled domain runs its specifications', async (t) => {
  const domain = await run(process.execPath, [join(project, 'dist/domain.js')], project);
  t.equal(domain.code, 0, 'node runs it', { output: domain.output });
  t.same(domain.output.trim().split('\n'), [
    'decider: Increment emits Incremented',
    'decider: Reset of a zero counter is rejected with already_zero',
    'decider: the history folds to total 3',
    'projection: c1 has total 1 after 1 reset at position 3',
    'apiSpec: DELETE /counters/c1 answers 204 and appends CounterReset',
    'createConverge: c2 reads back total 7',
  ], 'each spec passed and printed its line');
});
