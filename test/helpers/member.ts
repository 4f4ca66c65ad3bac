import { Type } from 'typebox';
import { defineAggregate, defineEvents, emit, type EventOf } from '../../src/core/aggregate.js';
import type { Commit } from '../../src/core/eventStore.js';
import { personalDeclarations } from '../../src/core/personal.js';

// A member whose email is personal data under its customer's key: the least an aggregate
// needs to have its fields sealed (docs/architecture.md, "Forgetting").

const events = defineEvents({ Joined: Type.Object({ customerId: Type.String(), email: Type.String() }) });

export const member = defineAggregate({
  name: 'member',
  commands: {},
  events,
  initialState: () => ({}),
  decide: () => emit<EventOf<typeof events>>(),
  evolve: (state: object) => state,
  personal: { Joined: { subject: 'customerId', fields: ['email'] } },
});

/** The member's declarations, as a store that seals takes them. */
export const memberPersonal = personalDeclarations([member]);

/** Member `id`'s first commit: it joined as `customerId` with `email`. */
export function joined(id: string, customerId: string, email: string): Commit {
  return { commandId: `c-${id}`, commandType: 'Join', aggregate: 'member', id, version: 1, events: [{ type: 'Joined', data: { customerId, email }, at: '2026-01-01T00:00:00.000Z' }] };
}
