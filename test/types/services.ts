// Compiled by `npm run build` (so before every test run), never executed: each
// `@ts-expect-error` fails the build when the error it expects goes away.
import { Type } from 'typebox';
import { createConverge, defineAggregate, defineApp, defineEvents, defineReactor, emit, type StoredEvent } from '@converge-es/converge';
import { apiSpec } from '@converge-es/converge/testing';

interface Prices {
  readonly prices: { unitPrice(productId: string): Promise<number | undefined> };
}
interface Mailer {
  readonly mailer: { send(to: string, text: string): Promise<void> };
}

const events = defineEvents({ Opened: Type.Object({ clientId: Type.String() }) });
const priced = defineAggregate({
  name: 'priced',
  commands: { open: { type: 'Open', schema: Type.Object({ clientId: Type.String() }) } },
  events,
  initialState: () => ({}),
  lookup: async (_command, { services }: { services: Prices }) => services.prices.unitPrice('p'),
  decide: (_state, command) => emit({ type: 'Opened', data: { clientId: command.data.clientId } }),
  evolve: (state) => state,
});
const plain = defineAggregate({
  name: 'plain',
  commands: { open: { type: 'Open', schema: Type.Object({ clientId: Type.String() }) } },
  events,
  initialState: () => ({}),
  decide: (_state, command) => emit({ type: 'Opened', data: { clientId: command.data.clientId } }),
  evolve: (state) => state,
});
const welcome = defineReactor({
  name: 'welcome',
  handles: ['Opened'],
  handle: (event: StoredEvent<{ type: 'Opened'; data: { clientId: string } }>, _meta, { services }: { services: Mailer }) => services.mailer.send(event.data.clientId, 'welcome'),
});

const prices = { unitPrice: async () => 1 };
const mailer = { send: async () => undefined };
const withReactor = defineApp({ aggregates: [priced, plain], reactors: [welcome] });
const withoutReactor = defineApp({ aggregates: [priced, plain] });

export async function typed(): Promise<void> {
  // An aggregate without a lookup adds nothing to what the others need.
  await createConverge(withoutReactor, { services: { prices } });
  // @ts-expect-error: the lookup's services are required
  await createConverge(withoutReactor, { services: {} });
  // A reactor's services join the lookups'.
  await createConverge(withReactor, { services: { prices, mailer } });
  // @ts-expect-error: the reactor's mailer is missing
  await createConverge(withReactor, { services: { prices } });
  await apiSpec(withReactor, { services: { prices, mailer } }).given().when({ method: 'GET', url: '/' }).then();
  // @ts-expect-error: apiSpec types them the same way
  await apiSpec(withReactor, { services: { mailer } }).given().when({ method: 'GET', url: '/' }).then();
}
