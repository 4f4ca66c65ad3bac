import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { createConverge, type Commit, type ConvergeApp, type EventStore } from '../../src/index.js';

/** One shop's and one order's commits as the runtime writes them, to be copied with other ids. */
export interface CommitTemplates {
  /** RegisterShop, AddMenuItem (`m1`), OpenShop. */
  readonly shop: readonly Commit[];
  /** PlaceOrder, AcceptOrder, DeliverOrder; the last carries `metadata.finished`. */
  readonly order: readonly Commit[];
}

/**
 * Runs one shop and one order's whole life through `app` on the in-memory runtime and
 * answers their commits as stored (personal fields opened), so that synthetic commits have
 * exactly the shape `decide` and the write path give them, `metadata.finished` included.
 */
export async function commitTemplates(app: ConvergeApp): Promise<CommitTemplates> {
  const converge = await createConverge(app, { config: { logLevel: 'silent' }, logger: pino({ level: 'silent' }) });
  const send = async (aggregate: string, id: string, type: string, data: object = {}) => {
    const result = await converge.dispatch({ aggregate, id, type, data } as never);
    if (result.kind !== 'accepted') throw new Error(`template ${type} ${id}: ${JSON.stringify(result)}`);
  };
  const commits = async (aggregate: string, id: string): Promise<Commit[]> => {
    const out: Commit[] = [];
    for await (const { commandId, commandType, version, events, metadata } of converge.store.read(aggregate, id, 0)) {
      out.push({ commandId, commandType, aggregate, id, version, events, ...(metadata ? { metadata } : {}) });
    }
    return out;
  };
  try {
    await send('shop', 's1', 'RegisterShop', { name: 's1', category: 'korean', ownerId: 'o1' });
    await send('shop', 's1', 'AddMenuItem', { menuId: 'm1', name: 'Kimbap', price: 4500 });
    await send('shop', 's1', 'OpenShop');
    await send('order', 'o1', 'PlaceOrder', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] });
    await send('order', 'o1', 'AcceptOrder');
    await send('order', 'o1', 'DeliverOrder');
    const templates = { shop: await commits('shop', 's1'), order: await commits('order', 'o1') };
    if (templates.order.length !== 3 || templates.order[2]!.metadata?.finished !== true || templates.order[1]!.metadata?.finished) {
      throw new Error(`the order's commits are not placed, accepted, delivered with the last one finished: ${JSON.stringify(templates.order)}`);
    }
    return templates;
  } finally {
    await converge.stop();
  }
}

/** `template` as the commit of another aggregate instance, made now by a command of its own; `data` overrides event fields the template has. */
export function commitFrom(template: Commit, id: string, data: Readonly<Record<string, string>>, at: string): Commit {
  const commandId = randomUUID();
  const events = template.events.map((e) => {
    const fields = { ...(e.data as Record<string, unknown>) };
    for (const [k, v] of Object.entries(data)) if (k in fields) fields[k] = v;
    return { ...e, data: fields, at };
  });
  return { ...template, id, commandId, events, metadata: { ...template.metadata!, correlationId: commandId, causationId: commandId } };
}

/** How the orders are written: which shop and customer order `n` has. */
export interface FillPlan {
  readonly shops: number;
  readonly customers: number;
  readonly orders: number;
  /** Orders per wave: all are placed, then all accepted, then all delivered. */
  readonly wave?: number;
  /** Appends in flight at most. */
  readonly inFlight?: number;
}

export const shopId = (n: number) => `bench-${n}`;
export const customerId = (n: number, customers: number) => `c${n % customers}`;

/**
 * Appends `shops` open shops and `orders` orders through their whole life to `store`, each
 * commit with the expected position the write path would give it (the order's previous
 * commit, 0 for a new one). Orders go in waves: a wave's orders are placed, then accepted,
 * then delivered, `inFlight` appends at a time. `progress` is called after each wave with
 * the commits appended so far.
 */
export async function fillOrders(store: EventStore, templates: CommitTemplates, plan: FillPlan, progress: (commits: number) => void): Promise<number> {
  const wave = plan.wave ?? 4000;
  const inFlight = plan.inFlight ?? 512;
  let appended = 0;
  const all = async <T>(items: readonly T[], append: (item: T) => Promise<void>) => {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, async () => {
      while (next < items.length) await append(items[next++]!);
    }));
  };
  const shops = Array.from({ length: plan.shops }, (_, i) => shopId(i));
  await all(shops, async (id) => {
    let position = 0;
    for (const template of templates.shop) {
      position = (await store.append(commitFrom(template, id, {}, new Date().toISOString()), position)).position;
      appended++;
    }
  });
  for (let first = 0; first < plan.orders; first += wave) {
    const orders = Array.from({ length: Math.min(wave, plan.orders - first) }, (_, i) => ({ n: first + i, position: 0 }));
    for (const template of templates.order) {
      const at = new Date().toISOString();
      await all(orders, async (o) => {
        const data = { shopId: shopId(o.n % plan.shops), customerId: customerId(o.n, plan.customers) };
        o.position = (await store.append(commitFrom(template, `o-${o.n}`, data, at), o.position)).position;
        appended++;
      });
    }
    progress(appended);
  }
  return appended;
}
