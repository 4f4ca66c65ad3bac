/**
 * Where converge takes the time of a command (stamped on its events and given to `decide`
 * as `now`). Production uses the system clock; tests pass `manualClock` to decide what
 * time it is.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` once the clock reaches `at` (ms since the epoch); answers a function that
   * cancels it. Durable timers wake on it, so a test that moves a manual clock fires them.
   */
  schedule(at: number, fn: () => void): () => void;
}

/** The longest delay `setTimeout` takes; a later wake-up is set again when this one comes. */
const MAX_DELAY = 2 ** 31 - 1;

/** The system clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(at, fn) {
    let timer: NodeJS.Timeout;
    const arm = () => {
      const wait = at - Date.now();
      timer = setTimeout(wait > MAX_DELAY ? arm : fn, Math.max(0, Math.min(wait, MAX_DELAY)));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  },
};

let isoSecond = NaN;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, from the text of its second kept between calls: every
 * command is stamped with its time, and V8's `toISOString` was 1.5% of a worker's CPU
 * under the command bench.
 */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    const full = new Date(ms).toISOString();
    // Years past 9999 (or before 0) are written with a sign and six digits.
    if (full.length !== 24) return full;
    isoSecond = second;
    isoPrefix = full.slice(0, 20);
  }
  const milli = ms - second * 1000;
  return isoPrefix + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z';
}

/** A clock that stands still until a test moves it. */
export interface ManualClock extends Clock {
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void;
  /** Sets the clock to an instant. */
  set(time: string | number | Date): void;
}

/**
 * A clock for tests, starting at `start` (an ISO time, ms since the epoch, or a Date). What
 * is scheduled runs when `advance` or `set` moves the clock to or past its time.
 */
export function manualClock(start: string | number | Date): ManualClock {
  let now = toMs(start);
  const scheduled = new Set<{ at: number; fn: () => void }>();
  const fireDue = () => {
    for (const entry of [...scheduled].sort((a, b) => a.at - b.at)) {
      if (entry.at > now) continue;
      scheduled.delete(entry);
      entry.fn();
    }
  };
  return {
    now: () => now,
    schedule(at, fn) {
      const entry = { at, fn };
      scheduled.add(entry);
      // Already due: on the next turn, as a timer would be.
      if (at <= now) queueMicrotask(fireDue);
      return () => void scheduled.delete(entry);
    },
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a clock moves forward only: ${ms}`);
      now += ms;
      fireDue();
    },
    set(time) {
      now = toMs(time);
      fireDue();
    },
  };
}

function toMs(time: string | number | Date): number {
  const ms = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : time.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`not a time: ${String(time)}`);
  return ms;
}
