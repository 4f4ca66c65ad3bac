import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Type } from 'typebox';
import { createConverge, defineAggregate, defineApp, defineEvents, defineProcess, emit, manualClock, type StoredEvent } from '../../src/index.js';

// Mistakes a team makes with its first process, and what converge says about them.

const loanEvents = defineEvents({
  Borrowed: Type.Object({ member: Type.String() }),
  Returned: Type.Object({}),
  Overdue: Type.Object({}),
});
const Empty = Type.Object({}, { additionalProperties: false });
const bookCommands = {
  borrow: { type: 'Borrow', schema: Type.Object({ member: Type.String() }, { additionalProperties: false }) },
  return: { type: 'Return', schema: Empty },
  overdue: { type: 'MarkOverdue', schema: Empty, internal: true },
} as const;
const book = defineAggregate({
  name: 'book',
  commands: bookCommands,
  events: loanEvents,
  initialState: () => ({}),
  decide: (_state, command) => {
    switch (command.type) {
      case 'Borrow':
        return emit({ type: 'Borrowed', data: { member: command.data.member } });
      case 'Return':
        return emit({ type: 'Returned', data: {} });
      default:
        return emit({ type: 'Overdue', data: {} });
    }
  },
  evolve: (state) => state,
});
type LoanEvent = StoredEvent<{ type: 'Borrowed'; data: { member: string } } | { type: 'Returned'; data: object }>;

/** A loan process keyed by the book: on a return it sends `command` and ends, so the book's second loan finds it ended. */
const loans = (command: 'MarkOverdue' | 'MarkOverdu') =>
  defineProcess({
    name: 'loans',
    handles: ['Borrowed', 'Returned'],
    onError: { kind: 'park' },
    correlate: (event: LoanEvent, meta) => ({ id: meta.id, start: event.type === 'Borrowed' }),
    initialState: () => ({}),
    decide(_state, input, { id }) {
      if (input.kind === 'event' && input.event.type === 'Borrowed') return { timers: [{ schedule: 'due', after: 86_400_000 }] };
      return { commands: [{ aggregate: 'book', id, type: command, data: {} }], end: true };
    },
    evolve: (state) => state,
  });

function captured() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  return { lines, logger: pino({ level: 'warn' }, stream) };
}

t.test("a process command the app does not have is refused before the decision is recorded, and settled() says it was parked", async (t) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const { logger } = captured();
  const converge = await createConverge(defineApp({ aggregates: [book], processes: [loans('MarkOverdu')] }), { clock, logger });
  t.teardown(() => converge.stop());
  t.equal((await converge.dispatch({ aggregate: 'book', id: 'b1', type: 'Borrow', data: { member: 'm1' } })).kind, 'accepted');
  await converge.settled();
  t.equal((await converge.dispatch({ aggregate: 'book', id: 'b1', type: 'Return', data: {} })).kind, 'accepted');
  await t.rejects(converge.settled(), { code: 'reaction_parked', message: /loans parked .*book has no command MarkOverdu/ }, 'settled() names the parked input and why');
  const instance = [];
  for await (const commit of converge.store.read('~loans', 'b1', 0)) instance.push(commit.events.map((e) => e.type));
  t.same(instance, [['~Handled', '~Scheduled']], 'the decision with the misspelt command was not recorded: no outbox holds a command that can never be sent');
  await converge.settled({ allowParked: true });
});

t.test('an event that would start an instance that has ended is logged, not silently dropped', async (t) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const { lines, logger } = captured();
  const converge = await createConverge(defineApp({ aggregates: [book], processes: [loans('MarkOverdue')] }), { clock, logger });
  t.teardown(() => converge.stop());
  for (const [type, data] of [['Borrow', { member: 'm1' }], ['Return', {}], ['Borrow', { member: 'm2' }]] as const) {
    t.equal((await converge.dispatch({ aggregate: 'book', id: 'b1', type, data } as never)).kind, 'accepted');
    await converge.settled();
  }
  t.match(
    lines.filter((l) => l['process'] === 'loans'),
    [{ level: 40, instance: 'b1', event: 'Borrowed', msg: /loans b1 has ended, so Borrowed at \d+ does not start it again: an instance id is used once/ }],
    'one warning, for the second loan',
  );
});
