import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { loadConfig } from '../../src/host/config.js';
import { openWriterViews } from '../../src/host/readSide.js';
import { bootId, markClean, markerOf, markWriting, recoverViews } from '../../src/read/viewsDurability.js';
import { encodeDoc } from '../../src/read/viewStore.js';
import { tempDir } from '../helpers/nats.js';

const log = pino({ level: 'silent' });

/** A views directory with a file in it, as LMDB leaves one. */
function viewsDir(t: Parameters<typeof tempDir>[0]): string {
  const dir = join(tempDir(t), 'views');
  mkdirSync(dir);
  writeFileSync(join(dir, 'data.mdb'), 'pages');
  return dir;
}

t.test('views written without a flush under an earlier boot and never closed cleanly are removed', async (t) => {
  const dir = viewsDir(t);
  markWriting(dir, 'boot-1');
  t.ok(recoverViews(dir, log, 'boot-2'));
  t.notOk(existsSync(dir), 'the views are gone, to be rebuilt');
  t.notOk(existsSync(markerOf(dir)), 'and so is their marker');
});

t.test('views closed cleanly, or unclean under this same boot (a process crash), are kept', async (t) => {
  const clean = viewsDir(t);
  markClean(clean, 'boot-1');
  t.notOk(recoverViews(clean, log, 'boot-2'), 'closed cleanly before the restart');
  t.ok(existsSync(join(clean, 'data.mdb')));
  const crashed = viewsDir(t);
  markWriting(crashed, 'boot-1');
  t.notOk(recoverViews(crashed, log, 'boot-1'), 'a process that died leaves its commits in the page cache');
  t.ok(existsSync(join(crashed, 'data.mdb')));
  const unknown = viewsDir(t);
  t.notOk(recoverViews(unknown, log, 'boot-1'), 'no marker: views from before markers, or flushed ones');
});

t.test('the writer marks its views unclean while open and clean once closed, under this boot', async (t) => {
  const dataDir = tempDir(t);
  const config = loadConfig({ env: { CONVERGE_DATA_DIR: dataDir, CONVERGE_NATS_URL: 'nats://127.0.0.1:1' } });
  const views = openWriterViews(config, log);
  const marker = () => JSON.parse(readFileSync(markerOf(join(dataDir, 'views')), 'utf8')) as { bootId: string; clean: boolean };
  t.same(marker(), { bootId: bootId(), clean: false });
  views.transaction(() => views.generation('v', 1).docs.put('k', encodeDoc({ id: 'k' }, 1)));
  await views.close();
  t.same(marker(), { bootId: bootId(), clean: true });
  const flushed = openWriterViews(loadConfig({ env: { CONVERGE_DATA_DIR: dataDir, CONVERGE_NATS_URL: 'nats://127.0.0.1:1', CONVERGE_PROJECTIONS_FLUSH_COMMITS: 'true' } }), log);
  t.same(flushed.get({ name: 'v' } as never, 'k'), { id: 'k' }, 'what was written is there');
  await flushed.close();
  t.same(marker(), { bootId: bootId(), clean: true }, 'with flushCommits the marker is left as it was');
});
