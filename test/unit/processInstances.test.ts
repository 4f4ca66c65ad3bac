import t from 'tap';
import { pino } from 'pino';
import { manualClock } from '../../src/core/clock.js';
import { EventStoreUnavailableError } from '../../src/core/errors.js';
import type { EventStore } from '../../src/core/eventStore.js';
import { processInstances } from '../../src/react/processRunner.js';
import { upcaster } from '../../src/read/apply.js';
import { createMemoryEventStore } from '../../src/store/memory.js';
import { order } from '../../actors/order/order.decider.js';
import { orderAcceptance } from '../../reactions/orderAcceptance.process.js';

// A process's decisions against a store whose answers can be lost: the memory it keeps of an
// instance must never be taken over what the stream holds.

t.test('a decision stored though its append went unanswered: the timer it scheduled still fires', async (t) => {
  const memory = createMemoryEventStore();
  let loseNextAnswer = false;
  // The append reaches the store and only its answer is lost, as with a paused nats-server.
  const store: EventStore = {
    ...memory,
    append: async (commit, expected) => {
      const ack = await memory.append(commit, expected);
      if (!loseNextAnswer) return ack;
      loseNextAnswer = false;
      throw new EventStoreUnavailableError('no reply within 1500 ms');
    },
  };
  const clock = manualClock('2026-03-01T12:00:00.000Z');
  const sent: string[] = [];
  const instances = processInstances({
    process: orderAcceptance,
    store,
    clock,
    settings: { orders: { acceptTimeoutMs: 60_000 } },
    upcast: upcaster([order]),
    dispatch: async (command) => (sent.push(`${command.type} ${command.id}`), { kind: 'accepted', id: command.id, version: 2, position: 9, events: [] }),
    log: pino({ level: 'silent' }),
  });
  const placed = await memory.append(
    {
      commandId: 'k1',
      commandType: 'PlaceOrder',
      aggregate: 'order',
      id: 'o1',
      version: 1,
      events: [{ type: 'OrderPlaced', data: { shopId: 's1', customerId: 'c1', lines: [{ menuId: 'm1', name: 'Kimbap', price: 4500, quantity: 1 }], total: 4500, deliveryFee: 0 }, at: new Date(clock.now()).toISOString() }],
    },
    0,
  );
  const commit = (await memory.commitAt(placed.position))!;
  loseNextAnswer = true;
  await t.rejects(Promise.all(instances.inputs(commit).map((i) => i.run())), 'the decision on OrderPlaced fails for the process: no answer came');
  const recorded = [];
  for await (const c of memory.read('~orderAcceptance', 'o1', 0)) recorded.push(c);
  t.equal(recorded.length, 1, 'yet the store holds it, with its timer');

  clock.advance(60_000);
  t.equal(await instances.fire('o1', 'accept', 1), 'fired', 'the timer fires: it is not taken for stale on a memory from before that decision');
});
