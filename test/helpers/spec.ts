import type { Test } from 'tap';
import type { AggregateDefinition, DomainCommand, DomainEvent } from '../../src/core/aggregate.js';

/**
 * Decider specifications in the given/when/then form:
 * `spec(t, shop).given(events).when(command).then(events)` or `.rejects(reason)`.
 */
export function spec<S, C extends DomainCommand, E extends DomainEvent, D extends Record<string, unknown>>(
  t: Test,
  aggregate: AggregateDefinition<S, C, E, D>,
) {
  return {
    given(history: readonly E[], deps: D = {} as D) {
      const state = history.reduce(aggregate.evolve, aggregate.initialState());
      return {
        when(command: C) {
          const decision = aggregate.decide(state, command, deps);
          return {
            then(expected: readonly E[]) {
              t.same(decision, { ok: true, events: expected }, `${command.type} emits ${expected.map((e) => e.type).join(', ') || 'nothing'}`);
            },
            rejects(reason: string) {
              t.same(decision, { ok: false, reason }, `${command.type} is rejected with ${reason}`);
            },
          };
        },
      };
    },
  };
}
