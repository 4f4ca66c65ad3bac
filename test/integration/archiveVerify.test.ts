import { execFile } from 'node:child_process';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { Type } from 'typebox';
import { createConverge, defineAggregate, defineEvents, emit, reject, type Converge, type ConvergeApp } from '../../src/index.js';
import { ARCHIVE_AGGREGATE, ARCHIVE_ID, ARCHIVED, type ArchivedAggregate } from '../../src/core/archive.js';
import { EventStoreUnavailableError } from '../../src/core/errors.js';
import type { EventStore, StoredCommit } from '../../src/core/eventStore.js';
import { viewsOf } from '../../src/host/app.js';
import type { LmdbViewStore } from '../../src/read/lmdbViews.js';
import { connectNats } from '../../src/nats/connection.js';
import { verifyViews, type VerifyReport } from '../../src/read/verify.js';
import { shopPlatform } from '../../app.js';
import { startTestNats, tempDir, type TestNats } from '../helpers/nats.js';
import { eventually } from '../helpers/processes.js';

// `converge verify` on an archived store (docs/architecture.md, "Archive"): the fold reads
// archived commits where their positions are, and the archive itself is checked against
// EVENTS, so that an archive broken on purpose is reported, not folded over.

t.setTimeout(180_000);
const CLI = join(import.meta.dirname, '../../dist/src/host/cli.js');
const placeBody = { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] };

async function runtime(t: Test, nats: TestNats, app: ConvergeApp = shopPlatform): Promise<{ converge: Converge; admin: string }> {
  const converge = await createConverge(app, {
    config: { nats: { url: nats.url }, dataDir: tempDir(t), logLevel: 'silent', cluster: { leaseTtlMs: 2000 }, archive: { afterMs: 300, intervalMs: 50 } },
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => converge.stop());
  const { admin } = await converge.listen({ adminPort: 0, host: '127.0.0.1' });
  return { converge, admin: admin! };
}

async function send(converge: Converge, aggregate: string, id: string, type: string, data: object = {}) {
  const result = await converge.dispatch({ aggregate, id, type, data } as never);
  if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
  return result;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function verify(admin: string): Promise<VerifyReport> {
  const res = await fetch(`${admin}/admin/verify`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`POST /admin/verify answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as VerifyReport;
}

function cli(admin: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'verify', '--url', admin], { env: { PATH: process.env.PATH ?? '' } }, (err, stdout) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout }),
    );
  });
}

/** Waits until nothing is due, every record applied has had its commits removed, and the archiver is paused there. */
async function archivedAndPaused(converge: Converge, minAggregates: number): Promise<boolean> {
  const done = () => {
    const a = converge.status().archive!;
    return a.archivedAggregates >= minAggregates && a.archiver.due === 0 && a.archiver.purgedThrough === a.indexPosition;
  };
  if (!(await eventually(done, 20_000))) return false;
  await converge.archive.pause();
  // A round under way when the pause came finishes what it copied.
  await new Promise((r) => setTimeout(r, 300));
  return eventually(done, 5000);
}

t.test('verify folds archived orders and checks the archive: it passes, then reports a forged duplicate and a commit gone from both', async (t) => {
  const nats = await startTestNats(t);
  const { converge, admin } = await runtime(t, nats);
  await send(converge, 'shop', 's1', 'RegisterShop', { name: 'K', category: 'korean', ownerId: 'o1' });
  await send(converge, 'shop', 's1', 'OpenShop');
  await send(converge, 'shop', 's1', 'AddMenuItem', { menuId: 'm1', name: 'Kimbap', price: 4500 });
  const ids = Array.from({ length: 8 }, (_, i) => `o${i + 1}`);
  for (const id of ids) await send(converge, 'order', id, 'PlaceOrder', placeBody);
  for (const id of ids.slice(0, 4)) {
    await send(converge, 'order', id, 'AcceptOrder');
    await send(converge, 'order', id, 'DeliverOrder');
  }
  for (const id of ids.slice(4, 6)) await send(converge, 'order', id, 'CancelOrder', { reason: 'changed my mind' });
  t.ok(await archivedAndPaused(converge, 6), 'the six finished orders are archived and their commits removed');
  await converge.settled();
  const archivedCommits = converge.status().archive!.archivedCommits;

  const clean = await verify(admin);
  t.equal(clean.ok, true, JSON.stringify({ archive: clean.archive, histories: clean.histories, checkpoints: clean.checkpoints }));
  t.match(clean.archive, { ok: true, commits: archivedCommits, copiedNotRemoved: 0, problems: [] }, 'every archived commit is in the archive once and gone from EVENTS');
  t.ok(clean.archive!.records >= 1, `read ${clean.archive!.records} records`);
  t.match(clean.histories, { ok: true, problems: [] }, "every aggregate's versions follow one another across archive and EVENTS");
  const orderHistory = clean.projections.find((p) => p.name === 'orderHistory')!;
  t.same([orderHistory.documents, orderHistory.differenceCount], [8, 0], 'the fold found the archived orders where the view has them');

  // A forged record holding an archived order's first commit again, appended as the archiver appends.
  const [first] = await collect(converge.store.read(ARCHIVE_AGGREGATE, ARCHIVE_ID, 0));
  const order = first!.events.map((e) => e.data as unknown as ArchivedAggregate).find((a) => a.aggregate === 'order')!;
  const copy = order.commits[0]!;
  const last = await converge.store.lastPosition(ARCHIVE_AGGREGATE, ARCHIVE_ID);
  const version = (await converge.store.commitAt(last))!.version + 1;
  const forged = await converge.store.append(
    { commandId: 'forged', commandType: 'Archive', aggregate: ARCHIVE_AGGREGATE, id: ARCHIVE_ID, version, events: [{ type: ARCHIVED, data: { ...order, commits: [copy] } as never, at: new Date().toISOString() }] },
    last,
  );
  const duplicated = await verify(admin);
  t.equal(duplicated.ok, false, 'verify is not ok');
  t.same(
    duplicated.archive!.problems,
    [`position ${copy.position} (order ${order.id}) is in more than one archive record: again in the one at ${forged.position}, an identical copy`],
    'it names the position archived twice',
  );
  const run = await cli(admin);
  t.equal(run.code, 1, 'converge verify exits 1');
  t.match(run.stdout, /archive: 1 problems \(\d+ records, \d+ commits, 0 copied and not yet removed\): position \d+ \(order o\d\) is in more than one archive record/, 'and says why');

  // o7 is still placed, so no record holds its commit: removing it from EVENTS loses it.
  const [lost] = (await collect(converge.store.read('order', 'o7', 0))) as StoredCommit[];
  const link = await connectNats(nats.url, { name: 'test-breaker', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  await link.jsm.streams.purge('EVENTS', { filter: 'events.order.o7' });
  await link.close();
  const gone = await verify(admin);
  t.equal(gone.ok, false);
  t.ok(gone.archive!.problems.includes(`position ${lost!.position} is in neither EVENTS nor the archive`), `it names the lost position: ${JSON.stringify(gone.archive!.problems)}`);
  t.match(gone.archive!.problems.at(-1), /the views were not compared: the fold stopped at a position in neither EVENTS nor the archive/, 'and says the views could not be compared past it');
  t.same(gone.projections, [], 'rather than compare views with a fold that stopped short');
});

// A ticket is finished once closed: the stream's first commits can be archived.
const ticketEvents = defineEvents({ TicketOpened: Type.Object({}), TicketClosed: Type.Object({}) });
type TicketState = { readonly status: 'none' | 'open' | 'closed' };
const ticket = defineAggregate({
  name: 'ticket',
  commands: { open: { type: 'OpenTicket', schema: Type.Object({}) }, close: { type: 'CloseTicket', schema: Type.Object({}) } },
  events: ticketEvents,
  initialState: (): TicketState => ({ status: 'none' }),
  decide: (state, command) => {
    if (command.type === 'OpenTicket') return state.status === 'none' ? emit({ type: 'TicketOpened', data: {} }) : reject('already_opened');
    return state.status === 'open' ? emit({ type: 'TicketClosed', data: {} }) : reject('not_open');
  },
  evolve: (_state, event): TicketState => ({ status: event.type === 'TicketOpened' ? 'open' : 'closed' }),
  finished: (state) => state.status === 'closed',
});

t.test('a stream whose first positions are only in the archive verifies ok: they are checked one by one, not taken as lost', async (t) => {
  const nats = await startTestNats(t);
  const { converge, admin } = await runtime(t, nats, { aggregates: [ticket] } as ConvergeApp);
  await send(converge, 'ticket', 't1', 'OpenTicket');
  await send(converge, 'ticket', 't1', 'CloseTicket');
  await send(converge, 'ticket', 't2', 'OpenTicket');
  t.ok(await archivedAndPaused(converge, 1), 't1 is archived');
  await converge.settled();
  const link = await connectNats(nats.url, { name: 'test-reader', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  const { first_seq } = (await link.jsm.streams.info('EVENTS')).state;
  await link.close();
  t.equal(first_seq, 3, 'EVENTS itself starts at position 3');

  const report = await verify(admin);
  t.equal(report.ok, true, JSON.stringify(report));
  t.same(report.checkpoints.problems, [], 'no problem says the stream was cut short');
  t.match(report.archive, { ok: true, commits: 2, problems: [] }, 'positions 1 and 2 are in the archive');
});

t.test('a fold whose subscription loses its place (as the archiver\'s removal makes nats-server 2.9.10 do) goes on from where it was, walking each commit once', async (t) => {
  const nats = await startTestNats(t);
  const app = { aggregates: [ticket] } as ConvergeApp;
  const { converge } = await runtime(t, nats, app);
  await converge.archive.pause();
  for (const id of ['t1', 't2', 't3']) {
    await send(converge, 'ticket', id, 'OpenTicket');
    await send(converge, 'ticket', id, 'CloseTicket');
  }
  await converge.settled();
  // The first subscription fails after three commits, as the archived store fails at a gap it cannot fill.
  let subscriptions = 0;
  const store: EventStore = {
    ...converge.store,
    async subscribe(after, opts) {
      const inner = await converge.store.subscribe(after, opts);
      const failAfter = subscriptions++ === 0 ? 3 : Infinity;
      return {
        async *[Symbol.asyncIterator]() {
          let n = 0;
          for await (const delivered of inner) {
            if (n++ === failAfter) throw new EventStoreUnavailableError(`positions ${delivered.commit.position} are in neither EVENTS nor the archive`);
            yield delivered;
          }
        },
        close: () => inner.close(),
      };
    },
  };
  const report = await verifyViews({ store, views: converge.views as LmdbViewStore, projections: viewsOf(app), aggregates: app.aggregates, log: pino({ level: 'silent' }) });
  t.equal(subscriptions, 2, 'the fold subscribed again after the failure');
  t.equal(report.ok, true, JSON.stringify(report));
  t.match(report.histories, { ok: true, aggregates: 3, problems: [] }, 'no commit was walked twice: a repeat would break its aggregate\'s versions');
});
