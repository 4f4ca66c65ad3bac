import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { eventually } from '../helpers/processes.js';
import { shopPlatform } from '../../app.js';

// The archive as a cluster host runs it (docs/architecture.md, "Archive"): the projector
// keeps the index and runs the archiver, the worker reads archived orders through the
// index in the same LMDB environment, and operators watch and pause it with the CLI.

t.setTimeout(180_000);
const CLI = join(import.meta.dirname, '../../dist/src/host/cli.js');
const TOKEN = 'archive-admin-token';

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: tempDir(t), env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

t.test('a worker serves archived orders from the projector\'s index, and the CLI shows and pauses the archiver', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const env = { CONVERGE_HTTP_TOKENS: TOKEN, CONVERGE_ARCHIVE_AFTER_MS: '300', CONVERGE_ARCHIVE_INTERVAL_MS: '50', CONVERGE_PROJECTIONS_STATUS_INTERVAL_MS: '200' };
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir, ...env });
  const projector = await startTestProjector(t, nats.url, dataDir, { env, projections: shopPlatform.projections });
  const cmd = commandUrl(worker!);
  const query = urlOf(worker!.queryApp);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const as = ['--url', urlOf(projector.adminApp), '--token', TOKEN];

  t.equal((await cli(...as, 'archive', 'pause')).code, 0, 'converge archive pause');
  await post(cmd, '/shops/s1/register', { name: 'K', category: 'korean', ownerId: 'u1' }, auth);
  await post(cmd, '/shops/s1/open', {}, auth);
  await post(cmd, '/shops/s1/add-menu-item', { menuId: 'm1', name: 'Kimbap', price: 4500 }, auth);
  for (const id of ['a1', 'a2']) {
    t.equal((await post(cmd, `/orders/${id}/place`, { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] }, auth)).status, 200, `order ${id} placed`);
    await post(cmd, `/orders/${id}/accept`, {}, auth);
    await post(cmd, `/orders/${id}/deliver`, {}, auth);
  }
  const before = await get(`${query}/orders/a1/history`, auth);
  t.equal(before.status, 200, 'its history reads before archiving');
  await new Promise((r) => setTimeout(r, 600));
  const paused = await cli(...as, 'archive');
  t.match(paused.stdout, /archiver: paused/, 'converge archive says it is paused');
  t.match(paused.stdout, /0 archived \(0 commits/, 'and nothing was archived while it was');

  t.equal((await cli(...as, 'archive', 'resume')).code, 0, 'converge archive resume');
  const archived = async () => JSON.parse((await cli(...as, 'archive', '--json')).stdout) as { archivedAggregates: number; archivedCommits: number; archiver: { archived: number } };
  // The two delivered orders, three commits each.
  t.ok(await eventually(async () => (await archived()).archivedCommits === 6, 20_000), 'converge archive --json counts the archived commits');
  t.match(await archived(), { archivedAggregates: 2, archiver: { archived: 2 } }, 'and aggregates');
  t.match((await cli(...as, 'archive')).stdout, /2 archived \(6 commits, [\d.]+ KiB\)/, 'converge archive says so in words');
  const status = await cli(...as, 'status');
  t.match(status.stdout, /\narchive: \d+ live, 2 archived \(6 commits, [\d.]+ KiB\); archiver running \(run by /, 'converge status shows the archive and who runs the archiver');

  const after = await get(`${query}/orders/a1/history`, auth);
  t.same(after.body, before.body, "the worker's history of an archived order is what it was");
  const cancel = await post(cmd, '/orders/a1/cancel', { reason: 'late' }, auth);
  t.equal(cancel.status, 422, 'a command to an archived order is decided on its history');
  t.equal((cancel.body as { reason?: string }).reason, 'invalid_transition', 'which says it was delivered');
});
