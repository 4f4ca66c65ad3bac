import { createHash } from 'node:crypto';
import type { NatsLink } from '../nats/connection.js';
import type { ViewsStatus } from './viewsStatus.js';

/** Whether the views are fit to serve, and why not. */
export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

/**
 * The subject on which a host's projector publishes its status once a `statusIntervalMs`.
 * The query workers of the host follow it: they share its LMDB views, not its memory, and
 * NATS still carries the status when the disk under the views does not take writes.
 */
export function viewsStatusSubject(hostId: string, viewsPath: string): string {
  return `converge.status.views.${createHash('sha1').update(`${hostId}:${viewsPath}`).digest('hex').slice(0, 16)}`;
}

/**
 * Readiness of the read side as CQRS wants it: the query API keeps serving stale views
 * (its `/ready` stays 200), while this says whether they are current. Not ready when any
 * view is failing, stalled or stopped, or its oldest unapplied commit is older than
 * `maxLagMs`, or the status itself is missing or older than `maxAgeMs` (the projector is
 * not running). A view being rebuilt is served by its current generation, which is live.
 */
export function viewsReadiness(status: ViewsStatus | undefined, opts: { maxLagMs: number; maxAgeMs?: number; now?: number }): Readiness {
  if (!status) return { ready: false, reasons: ['no status from the projector yet'] };
  const reasons: string[] = [];
  const age = (opts.now ?? Date.now()) - Date.parse(status.at);
  if (opts.maxAgeMs !== undefined && age > opts.maxAgeMs) reasons.push(`the projector's last status is ${Math.round(age / 1000)} s old`);
  for (const p of status.projections) {
    if (p.state === 'failing' || p.state === 'stalled' || p.state === 'stopped') reasons.push(`${p.name} is ${p.state}${p.error ? `: ${p.error}` : ''}`);
    else if (p.lagMs === null) reasons.push(`${p.name} is ${p.lagEvents} commits behind, of unknown age`);
    else if (p.lagMs > opts.maxLagMs) reasons.push(`${p.name} is ${p.lagEvents} commits (${p.lagMs} ms) behind`);
  }
  return { ready: reasons.length === 0, reasons };
}

/** Publishes the status on the host's subject every `intervalMs`; best effort (NATS may be away). */
export function publishViewsStatus(link: NatsLink, subject: string, status: () => ViewsStatus, intervalMs: number): { stop(): void } {
  const send = () => {
    if (!link.isConnected()) return;
    try {
      link.nc.publish(subject, JSON.stringify(status()));
    } catch {
      // The connection closed between the check and the publish; the next tick tries again.
    }
  };
  send();
  const timer = setInterval(send, intervalMs);
  return { stop: () => clearInterval(timer) };
}

/** The latest status a host's projector published, as a query worker sees it. */
export interface ViewsStatusFollower {
  latest(): ViewsStatus | undefined;
  stop(): void;
}

/** Follows the projector's status subject. */
export function followViewsStatus(link: NatsLink, subject: string): ViewsStatusFollower {
  let latest: ViewsStatus | undefined;
  const sub = link.nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) return;
      try {
        latest = msg.json<ViewsStatus>();
      } catch {
        // Not a status; ignore it.
      }
    },
  });
  return { latest: () => latest, stop: () => sub.unsubscribe() };
}

/**
 * The subject on which a host's projector nudges its query workers after each batch the
 * live views committed: an empty message, since the position is in the views themselves.
 */
export function viewsAppliedSubject(hostId: string, viewsPath: string): string {
  return viewsStatusSubject(hostId, viewsPath).replace('converge.status.views.', 'converge.applied.views.');
}

/** Sends the nudge; best effort, as readers also look again on their own. */
export function nudgeApplied(link: NatsLink, subject: string): () => void {
  return () => {
    if (!link.isConnected()) return;
    try {
      link.nc.publish(subject);
    } catch {
      // The connection closed meanwhile; readers fall back to looking again after a while.
    }
  };
}

/** What a query worker waits on for a view to move: the projector's next nudge. */
export interface AppliedWaiter {
  /** Resolves at the projector's next nudge, or after `ms` if none comes (NATS away, a nudge lost). */
  next(ms: number): Promise<void>;
  stop(): void;
}

/** An `AppliedWaiter` woken in-process, by a runtime whose projector runs beside its query routes. */
export interface AppliedSignal extends AppliedWaiter {
  /** Wakes every read waiting for a view to move. */
  wake(): void;
}

/** A waiter woken by `wake`, with no NATS between the projector and the readers. */
export function appliedSignal(): AppliedSignal {
  let waiting: Array<() => void> = [];
  const wake = () => {
    const woken = waiting;
    waiting = [];
    for (const w of woken) w();
  };
  return { wake, next: (ms) => wait(ms, (w) => waiting.push(w), (w) => (waiting = waiting.filter((x) => x !== w))), stop: wake };
}

/** Resolves when woken through `add`, or after `ms` (then `remove`s its waker). */
function wait(ms: number, add: (wake: () => void) => void, remove: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      remove(wake);
      resolve();
    }, ms);
    const wake = () => {
      clearTimeout(timer);
      resolve();
    };
    add(wake);
  });
}

/**
 * Follows the projector's nudges on `subject`. `onNudge` runs at each nudge before the
 * waiters resume: the worker ends its views' snapshot there, so that what they read next
 * holds the batch the nudge announces (docs/architecture.md, "A snapshot per turn").
 */
export function followApplied(link: NatsLink, subject: string, onNudge?: () => void): AppliedWaiter {
  let waiting: Array<() => void> = [];
  const wakeAll = () => {
    const woken = waiting;
    waiting = [];
    for (const wake of woken) wake();
  };
  const sub = link.nc.subscribe(subject, {
    callback: () => {
      onNudge?.();
      wakeAll();
    },
  });
  return {
    next: (ms) => wait(ms, (w) => waiting.push(w), (w) => (waiting = waiting.filter((x) => x !== w))),
    stop: () => {
      sub.unsubscribe();
      wakeAll();
    },
  };
}
