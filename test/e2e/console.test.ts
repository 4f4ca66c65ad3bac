import t from 'tap';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tempDir } from '../helpers/nats.js';
import { startCluster, waitReady, type TestCluster } from '../helpers/cluster.js';

// A browser and a whole cluster on a 2-core machine that others share.
t.setTimeout(300_000);

const TOKEN = 'console-e2e-admin-token';
const CHROMIUM = '/usr/bin/chromium';
const APP = join(import.meta.dirname, '../../dist/test/helpers/consoleApp.js');
/** Where the screenshot of the page mid-rebuild goes (ignored by git). */
const SCREENSHOT = join(import.meta.dirname, '../output/console.png');

const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const command = (cluster: TestCluster, path: string, body: object) =>
  fetch(cluster.base + path, { method: 'POST', headers: auth, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

/** Registers `n` shops and renames each a few times, `parallel` commands at a time. */
async function sendCommands(cluster: TestCluster, prefix: string, n: number, parallel = 16): Promise<void> {
  const jobs: (() => Promise<unknown>)[] = [];
  for (let i = 0; i < n; i++) {
    jobs.push(async () => {
      await command(cluster, `/shops/${prefix}${i}/register`, { name: `Shop ${i}`, category: 'korean', ownerId: 'u1' });
      for (let r = 0; r < 3; r++) await command(cluster, `/shops/${prefix}${i}/rename`, { name: `Shop ${i}.${r}` });
    });
  }
  await Promise.all(Array.from({ length: parallel }, async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) await job();
  }));
}

const cell = (page: Page, projection: string, column: string) => page.locator(`tr[data-projection="${projection}"] .${column}`);
/**
 * Polls a projection's cell until its text passes `ok`. (Not `waitForFunction`: the page's
 * content security policy forbids the eval it uses, as it should.)
 */
async function until(page: Page, projection: string, column: string, ok: (text: string) => boolean, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await cell(page, projection, column).textContent({ timeout: timeoutMs })) ?? '';
    if (ok(text)) return text;
    if (Date.now() > deadline) throw new Error(`${projection} ${column} is still ${JSON.stringify(text)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const numberIn = async (page: Page, projection: string, column: string) => Number(await cell(page, projection, column).textContent());

t.test('the console in headless Chromium: sign-in, live projections, a parked event retried, a rebuild with progress', async (t) => {
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} is installed (apt-get install -y chromium)`);
  const parkFile = join(tempDir(t), 'park');
  writeFileSync(parkFile, 'probe cannot fold park-me while this file exists');
  const cluster = await startCluster(
    t,
    {
      CONVERGE_DATA_DIR: tempDir(t),
      CONVERGE_CLUSTER_WORKERS: '1',
      CONVERGE_HTTP_TOKENS: TOKEN,
      CONVERGE_PROJECTIONS_STATUS_INTERVAL_MS: '250',
      CONVERGE_PROJECTIONS_BATCH_SIZE: '25',
      CONSOLE_TEST_PARK_FILE: parkFile,
      CONSOLE_TEST_FOLD_MS: '12',
    },
    APP,
  );
  await waitReady(cluster, 60_000);
  await sendCommands(cluster, 'warm', 100);

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
  const urls: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${cluster.admin}/`);

  t.test('with tokens configured the page asks for the admin token, refuses a wrong one and shows every projection with the right one', async (t) => {
    await page.locator('#signin').waitFor({ state: 'visible' });
    t.ok(await page.locator('#main').isHidden(), 'nothing is shown before sign-in');
    await page.fill('#token', 'not-the-token');
    await page.click('#signin button');
    await page.locator('#signin-error', { hasText: 'not accepted' }).waitFor();
    await page.fill('#token', TOKEN);
    await page.click('#signin button');
    await page.locator('#main').waitFor({ state: 'visible' });
    await page.locator('#connection[data-state="live"]').waitFor();
    const names = await page.locator('#projections tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-projection')));
    t.same(names, ['shopDisplay', 'shopList', 'orderHistory', 'shopStats', 'probe', 'converge-processes', 'converge-lifecycle'], 'a row for every projection, converge\'s processes and lifecycle views too');
    t.equal(await page.evaluate("sessionStorage.getItem('converge.adminToken')"), TOKEN, 'the token is kept in sessionStorage');
  });

  t.test('position, lag and the throughput chart move while commands flow', async (t) => {
    const before = await numberIn(page, 'shopDisplay', 'position');
    const sending = sendCommands(cluster, 'flow', 150);
    // The probe folds slowly (12 ms an event, about 80 a second), so it falls behind while the commands come.
    await until(page, 'probe', 'lag-events', (lag) => Number(lag) > 0);
    t.pass('the probe projection shows a lag while commands flow');
    await sending;
    await until(page, 'shopDisplay', 'position', (p) => Number(p) >= before + 600);
    t.ok((await numberIn(page, 'shopDisplay', 'position')) >= before + 600, 'the position went up by the 600 commits sent');
    await until(page, 'probe', 'lag-events', (lag) => lag === '0');
    t.pass('and the lag goes back to 0 once they are applied');
    const rates = await page.locator('#throughput-chart polyline').getAttribute('points');
    t.ok(rates !== null && rates.split(' ').some((p) => Number(p.split(',')[1]) < 100), 'the throughput chart drew a rate above 0');
    t.ok(await page.locator('#lag-chart polyline[data-series="probe"]').count(), 'the lag chart has the probe');
  });

  t.test('a parked event is listed, inspected, refused while its fold still fails, and retried from the page', async (t) => {
    const parked = await command(cluster, '/shops/warm1/rename', { name: 'park-me' });
    t.equal(parked.status, 200);
    const row = page.locator(`tr[data-parked="probe/${parked.body.position as number}/0"]`);
    await row.waitFor({ timeout: 15_000 });
    t.match(await row.textContent(), /ShopRenamed.*probe cannot fold park-me yet/);
    await row.locator('button[data-action="inspect"]').click();
    await page.locator('#parked-detail', { hasText: '"park-me"' }).waitFor();
    t.pass('Inspect shows the event');
    await row.locator('button[data-action="retry"]').click();
    await page.locator('#message.error', { hasText: 'still_failing' }).waitFor();
    t.pass('a retry that fails again says so and leaves it parked');
    rmSync(parkFile);
    await row.locator('button[data-action="retry"]').click();
    await row.waitFor({ state: 'detached' });
    await page.locator('#parked .empty').waitFor({ state: 'visible' });
    const left = await fetch(`${cluster.admin}/admin/parked`, { headers: auth }).then((r) => r.json() as Promise<{ parked: unknown[] }>);
    t.same(left.parked, [], 'no parked event is left');
  });

  t.test('reactors and processes are listed with their state, and a parked input is retried from the page', async (t) => {
    await page.locator('#reactions').waitFor({ state: 'visible' });
    const names = await page.locator('#reactions tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-reaction')));
    t.same(names.sort(), ['closedShopOrders', 'orderAcceptance', 'probeReactor', 'reviewedOrders'], 'a row for every reactor and process');
    await page.locator('tr[data-reaction="orderAcceptance"][data-state="running"]').waitFor();
    t.match(await page.locator('#reactions-holder').textContent(), /^Run by /, 'who runs them');
    writeFileSync(parkFile, 'probeReactor cannot handle park-me-too while this file exists');
    const parked = await command(cluster, '/shops/warm1/rename', { name: 'park-me-too' });
    const row = page.locator(`tr[data-parked-reaction="probeReactor/${parked.body.position as number}/0"]`);
    await row.waitFor({ timeout: 15_000 });
    t.match(await row.textContent(), /ShopRenamed.*probeReactor cannot handle park-me-too yet/, 'the parked input, with its error');
    await row.locator('button[data-action="retryReaction"]').click();
    await page.locator('#message.error', { hasText: 'still_failing' }).waitFor();
    t.pass('a retry that fails again says so');
    rmSync(parkFile);
    await row.locator('button[data-action="retryReaction"]').click();
    await row.waitFor({ state: 'detached' });
    const left = await fetch(`${cluster.admin}/admin/reactions/parked`, { headers: auth }).then((r) => r.json() as Promise<{ parked: unknown[] }>);
    t.same(left.parked, [], 'no parked input is left');
  });

  t.test('the archive shows live and archived aggregates, and the archiver is paused and resumed from the page', async (t) => {
    await page.locator('#archive[data-state="running"]').waitFor({ timeout: 15_000 });
    t.ok(Number(await page.locator('#archive [data-field="live"]').textContent()) > 0, 'the live aggregates are counted');
    t.equal(await page.locator('#archive [data-field="archived"]').textContent(), '0', 'none archived within archive.afterMs');
    await page.locator('#archive button[data-action="pauseArchiver"]').click();
    await page.locator('#archive[data-state="paused"]').waitFor();
    const paused = await fetch(`${cluster.admin}/admin/archive`, { headers: auth }).then((r) => r.json() as Promise<{ archiver: { state: string } }>);
    t.equal(paused.archiver.state, 'paused', 'the admin API says paused');
    await page.locator('#archive button[data-action="resumeArchiver"]').click();
    await page.locator('#archive[data-state="running"]').waitFor();
    t.pass('and running again once resumed');
  });

  t.test('a rebuild started from the page shows its progress and ETA, then swaps in', async (t) => {
    const generation = await numberIn(page, 'probe', 'generation');
    await page.locator('tr[data-projection="probe"] button[data-action="rebuild"]').click();
    await page.locator('tr[data-projection="probe"] .rebuild', { hasText: /ETA [0-9.]+ m?s/ }).waitFor({ timeout: 20_000 });
    t.ok(await page.locator('tr[data-projection="probe"] .rebuild progress').isVisible(), 'a progress bar');
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.match(await cell(page, 'probe', 'rebuild').textContent(), /^ \d+\/\d+ · ETA/, 'position/target and the ETA');
    await until(page, 'probe', 'generation', (g) => g === String(generation + 1), 60_000);
    t.equal(await page.locator('tr[data-projection="probe"] progress').count(), 0, 'no progress bar once it swapped in');
    t.equal(await cell(page, 'probe', 'state').textContent(), 'running');
  });

  t.test('a subscriber shows its pending notices and gets a re-publish from the page', async (t) => {
    const added = await fetch(`${cluster.admin}/admin/subscribers`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'search', from: 'all' }) });
    t.equal(added.status, 201);
    const row = page.locator('tr[data-subscriber="search"]');
    // The list is read every fifth status (250 ms apart here).
    await row.waitFor({ timeout: 15_000 });
    t.ok(Number(await row.locator('td').nth(1).textContent()) > 0, 'the notices of every shop wait for it');
    await row.locator('input[name="sincePosition"]').fill('1');
    await row.locator('button[data-action="republish"]').click();
    await page.locator('#message', { hasText: /re-publish to search: done \{"republished":[1-9]/ }).waitFor();
    t.pass('the re-publish answered with the count it sent');
    await page.locator('tr[data-subscriber="search"] td:nth-child(4)', { hasText: /^[1-9]/ }).waitFor({ timeout: 15_000 });
    t.pass('and they wait for it in REPLAY');
  });

  t.test('the event browser shows a commit by position, and an aggregate history with its state at a version', async (t) => {
    const renamed = await command(cluster, '/shops/warm2/rename', { name: 'Browsed' });
    await page.fill('#by-position input[name="position"]', String(renamed.body.position));
    await page.click('#by-position button');
    await page.locator('#browser-result', { hasText: '"Browsed"' }).waitFor();
    t.match(await page.locator('#browser-result').textContent(), /"commandType": "RenameShop"[\s\S]*"id": "warm2"/, 'the commit at that position');
    await page.selectOption('#by-aggregate select', 'shops');
    await page.fill('#by-aggregate input[name="id"]', 'warm2');
    await page.fill('#by-aggregate input[name="atVersion"]', '1');
    await page.click('#by-aggregate button');
    await page.locator('#browser-result', { hasText: '"history"' }).waitFor();
    const shown = JSON.parse((await page.locator('#browser-result').textContent()) ?? '{}') as { state: { version: number; state: { name: string } }; history: { events: { type: string }[] } };
    t.match(shown.state, { version: 1, state: { name: 'Shop 2' } }, 'the state as of version 1');
    t.same(shown.history.events.map((e) => e.type), ['ShopRegistered', 'ShopRenamed', 'ShopRenamed', 'ShopRenamed', 'ShopRenamed'], 'the whole history');
    await page.fill('#by-position input[name="position"]', '999999');
    await page.click('#by-position button');
    await page.locator('#browser-result', { hasText: 'commit_not_found' }).waitFor();
    t.pass('a position past the stream says commit_not_found');
  });

  t.test('the token never appears in a URL and the page raised no error', async (t) => {
    t.same(urls.filter((u) => u.includes(TOKEN)), [], 'no request URL carries the token');
    t.same(pageErrors, []);
  });

  t.test('the cluster stops cleanly while the page holds its status stream open', async (t) => {
    const started = Date.now();
    cluster.proc.kill('SIGTERM');
    t.equal(await cluster.exited, 0, 'the primary exits 0');
    t.ok(Date.now() - started < 15_000, `within ${Date.now() - started} ms`);
    await page.locator('#connection[data-state="lost"]').waitFor();
    t.pass('the page says it lost the stream');
  });
});
