import t from 'tap';
import { pino } from 'pino';
import { manualClock } from '../../src/core/clock.js';
import type { AnyProcess } from '../../src/core/reactions.js';
import { write } from '../../src/read/apply.js';
import { createMemoryViews } from '../../src/read/memoryViews.js';
import type { IndexScanner } from '../../src/read/viewStore.js';
import type { ProcessInstances } from '../../src/react/processRunner.js';
import { PROCESSES_VIEW, processesView, type InstanceDoc } from '../../src/react/processView.js';
import { startTimers } from '../../src/react/timers.js';

// The timer service against the processes view in memory, with a process whose firings are
// recorded but never reach the view: what the view shows stays as it was written.

const START = Date.parse('2026-03-01T12:00:00.000Z');

/** `count` open instances of process `p`, each with one pending timer `t`, the i-th due at `dueOf(i)`. */
function viewWith(count: number, dueOf: (i: number) => number) {
  const views = createMemoryViews();
  const projection = processesView([{ name: 'p' } as AnyProcess]);
  views.transaction(() => {
    for (let i = 0; i < count; i++) {
      const doc: InstanceDoc = { process: 'p', id: `i${String(i).padStart(4, '0')}`, open: true, timers: { t: { due: dueOf(i), seq: 1 } } };
      write(views.generation(PROCESSES_VIEW, 1), projection, ['p', doc.id], doc, i + 1);
    }
  });
  let entriesRead = 0;
  // The reader's methods are closures over the store, so a copy of them reads the same views.
  const counted: IndexScanner = {
    ...views,
    scanIndex(view, start, end, limit) {
      const entries = views.scanIndex(view, start, end, limit);
      entriesRead += entries.length;
      return entries;
    },
  };
  return { views: counted, entriesRead: () => entriesRead };
}

function service(views: IndexScanner, clock: ReturnType<typeof manualClock>) {
  const fired: string[] = [];
  const instances: ProcessInstances = {
    inputs: () => [],
    forget() {},
    async fire(id) {
      fired.push(id);
      return 'fired';
    },
  };
  const timers = startTimers({ views, processes: new Map([['p', instances]]), clock, log: pino({ level: 'silent' }) });
  return { timers, fired };
}

/** Lets the service's round of firing, and the arming after it, run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

t.test('arming after a round reads only the first index entries when the earliest pending timer is first', async (t) => {
  const clock = manualClock(START);
  const { views, entriesRead } = viewWith(1000, (i) => START + 60_000 + i);
  const { timers, fired } = service(views, clock);
  timers.start();
  await settle();
  t.same(fired, [], 'nothing is due yet');
  // The round found nothing due (an empty range); arming looked for the earliest timer.
  t.ok(entriesRead() <= 8, `arming read ${entriesRead()} index entries of 1,000 pending timers`);
  clock.advance(60_000);
  await settle();
  t.same(fired, ['i0000'], 'the wake-up was set at the earliest due time');
  await timers.stop();
});

t.test('arming finds the earliest timer not yet handled past hundreds fired that the view still shows', async (t) => {
  const clock = manualClock(START);
  // 600 timers due already, then one due in ten seconds.
  const { views } = viewWith(601, (i) => (i < 600 ? START - 1000 + i : START + 10_000));
  const { timers, fired } = service(views, clock);
  timers.start();
  await settle();
  t.equal(fired.length, 600, 'the round fired every timer due');
  clock.advance(9_999);
  await settle();
  t.equal(fired.length, 600, 'none fired again, and the next not before its time');
  clock.advance(1);
  await settle();
  t.same(fired.slice(600), ['i0600'], 'the wake-up was set at the 601st timer, past the 600 handled');
  await timers.stop();
});
