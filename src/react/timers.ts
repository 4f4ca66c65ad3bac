import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { documentKeyOf, LAST, type IndexScanner } from '../read/viewStore.js';
import type { ProcessInstances } from './processRunner.js';
import { PROCESSES_VIEW, type InstanceDoc } from './processView.js';

/** The durable timers' firing, for one runtime (see `startTimers`). */
export interface TimerService {
  start(): void;
  stop(): Promise<void>;
  /** Looks again for timers due: after the views applied a batch (a timer may have been scheduled). */
  wake(): void;
}

export interface TimerOptions {
  /** The views, with converge's processes view among them. */
  readonly views: IndexScanner;
  readonly processes: ReadonlyMap<string, ProcessInstances>;
  readonly clock: Clock;
  readonly log: Logger;
  /** Firings at once, over every process. */
  readonly concurrency?: number;
  /** Told of each timer fired, with how late after its due time (ms). */
  readonly onFired?: (process: string, latenessMs: number) => void;
}

const view = { name: PROCESSES_VIEW };
const PAGE = 512;
/**
 * The first page `arm` reads. It needs only the earliest timer not handled yet, which is
 * nearly always the first entry: the projector arms after every batch, and reading a full
 * page of keys each time was 4.6% of its busy time under the mixed command load. Later pages
 * grow fourfold up to `PAGE`.
 */
const FIRST_ARM_PAGE = 8;

/**
 * Fires the processes' durable timers (docs/architecture.md, "Reactions"). The due index is
 * the processes view (`processesView`): a view like any other, kept in LMDB by the host's
 * projector and rebuilt from `EVENTS`, so timers survive any process's death and a timer that
 * fell due while nothing ran is found at the next start. The service sleeps until the
 * earliest due time (on the runtime's clock), or until the view moves; then it fires every
 * timer due, `concurrency` at a time. A firing is a decision recorded in the instance's stream
 * at its last position, taken only if the timer is still pending in the same scheduling, so a
 * timer fires once even when two services race or the view lags.
 */
export function startTimers(opts: TimerOptions): TimerService {
  const { views, clock, log } = opts;
  const concurrency = opts.concurrency ?? 32;
  /** Timers fired (or found stale) that the view may still show until it applies their commit. */
  const done = new Map<string, number>();
  /** When a timer's firing last failed: it is tried again a second after. */
  const failed = new Map<string, number>();
  let cancelWake: (() => void) | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;

  const timerKey = (process: string, id: string, name: string, seq: number) => `${process}\u0000${id}\u0000${name}\u0000${seq}`;

  /** The timers due now that have not been handled yet, from the due index. */
  function due(now: number): Array<{ process: string; id: string; name: string; seq: number; due: number }> {
    const out: Array<{ process: string; id: string; name: string; seq: number; due: number }> = [];
    let start: (string | number)[] = ['due'];
    for (;;) {
      const entries = views.scanIndex(view, start, ['due', now, LAST], PAGE);
      for (const entry of entries) {
        const [, , process, name] = entry as [string, number, string, string];
        const key = documentKeyOf(entry) as [string, string];
        const doc = views.get<InstanceDoc>(view as never, key);
        const timer = doc?.timers[name];
        if (!doc || !timer || timer.due > now) continue;
        if (done.has(timerKey(process, doc.id, name, timer.seq))) continue;
        out.push({ process, id: doc.id, name, seq: timer.seq, due: timer.due });
      }
      if (entries.length < PAGE) return out;
      start = [...entries[entries.length - 1]!, LAST];
    }
  }

  async function fireDue(): Promise<void> {
    const now = clock.now();
    const timers = due(now);
    let next = 0;
    const worker = async () => {
      while (next < timers.length && !stopped) {
        const t = timers[next++]!;
        const instances = opts.processes.get(t.process);
        if (!instances) {
          // A process the app no longer has: its timers are left where they are.
          done.set(timerKey(t.process, t.id, t.name, t.seq), clock.now());
          continue;
        }
        try {
          const outcome = await instances.fire(t.id, t.name, t.seq);
          done.set(timerKey(t.process, t.id, t.name, t.seq), clock.now());
          failed.delete(timerKey(t.process, t.id, t.name, t.seq));
          if (outcome === 'fired') opts.onFired?.(t.process, Math.max(0, clock.now() - t.due));
        } catch (err) {
          // Tried again a second later; the firing records nothing until it succeeds.
          failed.set(timerKey(t.process, t.id, t.name, t.seq), clock.now());
          log.warn({ process: t.process, instance: t.id, timer: t.name, err }, `timer ${t.name} of ${t.process} ${t.id} did not fire: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, timers.length) }, worker));
    // What the view no longer shows needs no more remembering.
    for (const [key, at] of done) if (clock.now() - at > 60_000) done.delete(key);
    for (const [key, at] of failed) if (clock.now() - at > 60_000) failed.delete(key);
  }

  /**
   * Sets the wake-up at the earliest due time the index holds among timers not handled yet.
   * One due already is fired at once (it fell due while the last round ran), or a second
   * after its firing failed; timers handled but still in the view wait for the view to move,
   * which wakes the service anyway.
   */
  function arm(): void {
    cancelWake?.();
    cancelWake = undefined;
    if (stopped) return;
    const now = clock.now();
    let start: (string | number)[] = ['due'];
    let read = 0;
    for (let page = FIRST_ARM_PAGE; read < 8 * PAGE; page = Math.min(PAGE, page * 4)) {
      const entries = views.scanIndex(view, start, ['due', LAST], page);
      read += entries.length;
      for (const entry of entries) {
        const [, dueAt, process, name] = entry as [string, number, string, string];
        const doc = views.get<InstanceDoc>(view as never, documentKeyOf(entry));
        const timer = doc?.timers[name];
        if (!doc || !timer || done.has(timerKey(process, doc.id, name, timer.seq))) continue;
        const failedAt = failed.get(timerKey(process, doc.id, name, timer.seq));
        cancelWake = clock.schedule(dueAt > now ? dueAt : failedAt === undefined ? now : Math.max(now, failedAt + 1000), wake);
        return;
      }
      if (entries.length < page) return;
      start = [...entries[entries.length - 1]!, LAST];
    }
    // Thousands handled and not yet out of the view: look again shortly.
    cancelWake = clock.schedule(now + 1000, wake);
  }

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fireDue();
        } while (again && !stopped);
      } catch (err) {
        log.error({ err }, `the timer service failed: ${(err as Error).message}`);
      } finally {
        running = undefined;
        arm();
      }
    })();
  }

  return {
    start() {
      stopped = false;
      wake();
    },
    async stop() {
      stopped = true;
      cancelWake?.();
      cancelWake = undefined;
      await running;
    },
    wake,
  };
}
