import t from 'tap';
import { pino } from 'pino';
import { defineReactor, type StoredEvent } from '../../src/index.js';
import { systemClock } from '../../src/core/clock.js';
import type { Feed, FeedSpec } from '../../src/read/feed.js';
import { createMemoryViews } from '../../src/read/memoryViews.js';
import { startReactions } from '../../src/react/host.js';
import { memoryReactionStore, type ReactionStore } from '../../src/react/reactionStore.js';
import { createMemoryEventStore } from '../../src/store/memory.js';

// The reactions host lists parked inputs at each status check (a consumer on the reactions'
// bucket on NATS). No listing may be left running when the connection closes after a stop.

const reactor = defineReactor({ name: 'r', handles: ['E'], handle: (_event: StoredEvent) => undefined });
const idleFeed = (_spec: FeedSpec): Feed => ({ health: () => ({ state: 'running', lastBatchAt: 0 }), unappliedAt: () => undefined, seen: () => 0, check: () => undefined, restart: () => undefined, stop: () => undefined });

/** A reaction store whose listings of parked inputs the test ends, one at a time. */
function heldListings(): { store: ReactionStore; started: () => number; finish: () => void } {
  const inner = memoryReactionStore();
  const waiting: Array<() => void> = [];
  let started = 0;
  const store: ReactionStore = {
    ...inner,
    parked: async (reaction) => {
      started++;
      await new Promise<void>((resolve) => waiting.push(resolve));
      return inner.parked(reaction);
    },
  };
  return { store, started: () => started, finish: () => waiting.shift()?.() };
}

async function host(reactionStore: ReactionStore) {
  return startReactions({
    reactors: [reactor],
    processes: [],
    aggregates: [],
    store: createMemoryEventStore(),
    views: createMemoryViews(),
    reactionStore,
    dispatch: () => Promise.reject(new Error('no commands here')),
    upcast: (_aggregate, event) => event,
    feed: idleFeed,
    clock: systemClock,
    settings: {},
    services: {},
    log: pino({ level: 'silent' }),
  });
}

t.test('a status check starts no listing of parked inputs while one is under way', async (t) => {
  const listings = heldListings();
  const reactions = await host(listings.store);
  reactions.check(0);
  reactions.check(0);
  reactions.check(0);
  t.equal(listings.started(), 1, 'one listing for three checks');
  listings.finish();
  await new Promise((r) => setTimeout(r, 10));
  reactions.check(0);
  t.equal(listings.started(), 2, 'the next check, once it ended, starts another');
  listings.finish();
  await reactions.stop();
});

t.test('a stopped host starts no listing, and its stop waits for the one under way', async (t) => {
  const listings = heldListings();
  const reactions = await host(listings.store);
  reactions.check(0);
  let stopped = false;
  const stopping = reactions.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(stopped, 'the stop waits while the listing runs');
  reactions.check(0);
  t.equal(listings.started(), 1, 'a check during the stop starts none');
  listings.finish();
  await stopping;
  t.ok(stopped, 'the stop ends once the listing has');
  reactions.check(0);
  t.equal(listings.started(), 1, 'nor does a check after it');
});
