import t from 'tap';
import { pino } from 'pino';
import type { Commit, StoredCommit } from '../../src/core/eventStore.js';
import { superviseFeed } from '../../src/read/feed.js';
import type { NatsLink } from '../../src/nats/connection.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const commit = (seq: number): Commit => ({ commandId: `c${seq}`, commandType: 'Register', aggregate: 'shop', id: `s${seq}`, version: 1, events: [] });

/**
 * A NATS link whose consumers deliver what the test says: a consumer that delivers
 * nothing and raises no error is what an ordered consumer can do after a server restart.
 */
function scriptedLink(deliveries: Array<number[] | 'hang'>) {
  const starts: number[] = [];
  const link = {
    js: {
      consumers: {
        get: async (_stream: string, opts: { opt_start_seq: number }) => {
          starts.push(opts.opt_start_seq);
          const script = deliveries[starts.length - 1] ?? 'hang';
          let closed = false;
          let release: () => void = () => undefined;
          return {
            consume: async () => ({
              close: async () => {
                closed = true;
                release();
              },
              async *[Symbol.asyncIterator]() {
                if (script !== 'hang') {
                  for (const seq of script) {
                    if (seq < opts.opt_start_seq) continue;
                    yield { seq, info: { pending: 0, timestampNanos: Date.now() * 1e6 }, json: () => commit(seq) };
                  }
                }
                while (!closed) await new Promise<void>((r) => (release = r));
              },
            }),
          };
        },
      },
    },
  };
  return { link: link as unknown as NatsLink, starts };
}

t.test('a consumer that delivers nothing while the stream has more is declared stalled, logged, and recreated from the checkpoint', async (t) => {
  const { link, starts } = scriptedLink([[1, 2], 'hang', [3, 4, 5]]);
  const applied: number[] = [];
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const feed = superviseFeed({
    link,
    batchSize: 10,
    batchMs: 1,
    name: 'projections',
    from: () => applied.at(-1) ?? 0,
    apply: (batch: StoredCommit[]) => void applied.push(...batch.map((c) => c.position)),
    stallMs: 100,
    maxBackoffMs: 1000,
    log,
  });
  t.teardown(() => feed.stop());
  await sleep(50);
  t.same(applied, [1, 2], 'the first consumer delivered');
  feed.check(2);
  t.equal(feed.health().state, 'running', 'caught up with the stream: running, however long it is quiet');

  feed.restart(); // the second consumer hangs
  await sleep(150);
  feed.check(5);
  t.equal(feed.health().state, 'running', 'behind, but not yet for stallMs');
  await sleep(150);
  feed.check(5);
  t.same(starts, [1, 3, 3], 'after stallMs behind the stream with no batch, the consumer is recreated from the checkpoint');
  await sleep(50);
  t.same(applied, [1, 2, 3, 4, 5], 'the new consumer delivers the rest, in order, once each');
  t.equal(feed.health().state, 'running', 'and the feed is running again');
  t.match(lines.find((l) => l.level === 40)?.msg, /^projections stalled: no progress for 0\.\d s while EVENTS has 3 more commits; recreating its consumer/);
  t.match(lines.find((l) => l.level === 30)?.msg, /^projections recovered after/);
});

t.test('a stalled feed says so until a batch applies', async (t) => {
  const { link } = scriptedLink(['hang', 'hang']);
  const feed = superviseFeed({
    link,
    batchSize: 10,
    batchMs: 1,
    name: 'notifier',
    from: () => 0,
    apply: () => undefined,
    stallMs: 50,
    maxBackoffMs: 1000,
    log: pino({ level: 'silent' }),
  });
  t.teardown(() => feed.stop());
  feed.check(3);
  await sleep(80);
  feed.check(3);
  t.match(feed.health(), { state: 'stalled', error: /no progress for .* while EVENTS has 3 more commits/ });
});
