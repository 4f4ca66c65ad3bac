import type { Decision, DomainEvent } from '../src/aggregate.js';

/** A successful decision carrying the given events. */
export function emit<E extends DomainEvent>(...events: E[]): Decision<E> {
  return { ok: true, events };
}

/** A business rejection: a value, so it stays in the types all the way to the HTTP reply. */
export function reject<E extends DomainEvent>(reason: string): Decision<E> {
  return { ok: false, reason };
}
