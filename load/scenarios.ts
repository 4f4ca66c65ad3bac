import { json, type Answer, type Call, type HttpClient } from './client.js';
import type { Recorder } from './recorder.js';
import type { RolePids } from './procs.js';

/** The system under load: where commands go and where reads go (the same origin for the baselines). */
export interface Target {
  readonly name: string;
  readonly command: string;
  readonly query: string;
  /** Its processes by role, when the load tool started it, so a run can measure their CPU. */
  readonly roles?: () => RolePids;
  /**
   * How far its reactions are behind the event store now, in commits (the largest over its
   * reactors and processes, as `GET /admin/reactions` counts), when the load tool started it: a run that left them behind has
   * deferred work its figures do not count.
   */
  readonly reactionLag?: () => Promise<number>;
}

/** What a scenario's steps share during one run. */
export interface RunContext {
  readonly target: Target;
  readonly client: HttpClient;
  readonly rec: Recorder;
  /** Shops seeded for this run; ids are unique to it, so runs against one system don't collide. */
  readonly shops: readonly string[];
  readonly hot: number;
  /** How many customers place the orders. */
  readonly customers: number;
  readonly prefix: string;
  /** Orders this run placed, waiting for their next step; shared by all its connections. */
  readonly orders: OrderQueues;
  /**
   * Under `--rate`, how late this connection started its step against the step's slot in
   * the schedule. The step's first request counts that wait in its latency (the
   * coordinated-omission correction): a system that falls behind the schedule shows it.
   */
  readonly pace?: { lateMs: number };
}

/** Orders in flight through their lifecycle. */
export interface OrderQueues {
  readonly placed: Order[];
  readonly accepted: Order[];
  readonly delivered: Order[];
  next: number;
}

interface Order {
  readonly id: string;
  readonly customerId: string;
}

/** Empty queues for a new run. */
export const orderQueues = (): OrderQueues => ({ placed: [], accepted: [], delivered: [], next: 0 });

/** A load scenario: one step is one request, or a command and its read. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  step(ctx: RunContext): Promise<void>;
}

const CATEGORIES = ['korean', 'pizza', 'burger', 'sushi', 'vegan'] as const;
const SORTS = ['rating', 'orders', 'newest'] as const;
const MENU = ['m1', 'm2', 'm3'] as const;

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
const ok = (a: Answer) => a.status >= 200 && a.status < 300;

/** Sends a call and records its answer under `kind`. */
async function send(ctx: RunContext, kind: string, call: Call): Promise<Answer> {
  const answer = await ctx.client.send(call);
  const late = ctx.pace?.lateMs ?? 0;
  if (late > 0) ctx.pace!.lateMs = 0;
  ctx.rec.record(kind, late > 0 ? { ...answer, ms: answer.ms + late } : answer);
  return answer;
}

const command = (ctx: RunContext, kind: string, path: string, body: object = {}) =>
  send(ctx, kind, { method: 'POST', url: ctx.target.command + path, body });

/** Queues stay short: an old order can wait forever without changing the mix. */
const push = (queue: Order[], order: Order) => (queue.length < 10_000 ? queue.push(order) : undefined);

async function placeOrder(ctx: RunContext, shopId: string): Promise<void> {
  const order = { id: `${ctx.prefix}o${ctx.orders.next++}`, customerId: `c${Math.floor(Math.random() * ctx.customers)}` };
  const items = [{ menuId: pick(MENU), quantity: 1 + Math.floor(Math.random() * 3) }];
  if (ok(await command(ctx, 'place order', `/orders/${order.id}/place`, { shopId, customerId: order.customerId, items }))) push(ctx.orders.placed, order);
}

/** The command mix: orders move through place → accept → deliver → review, beside menu and name changes. */
async function commandStep(ctx: RunContext, shops: readonly string[]): Promise<void> {
  const roll = Math.random();
  if (roll < 0.15 && ctx.orders.placed.length) {
    const order = ctx.orders.placed.shift()!;
    if (ok(await command(ctx, 'accept order', `/orders/${order.id}/accept`))) push(ctx.orders.accepted, order);
  } else if (roll < 0.3 && ctx.orders.accepted.length) {
    const order = ctx.orders.accepted.shift()!;
    if (ok(await command(ctx, 'deliver order', `/orders/${order.id}/deliver`))) push(ctx.orders.delivered, order);
  } else if (roll < 0.4 && ctx.orders.delivered.length) {
    const order = ctx.orders.delivered.shift()!;
    const body = { orderId: order.id, customerId: order.customerId, rating: 1 + Math.floor(Math.random() * 5), text: 'quick and warm' };
    await command(ctx, 'post review', `/reviews/${ctx.prefix}r${ctx.orders.next++}/post`, body);
  } else if (roll < 0.55) {
    await command(ctx, 'change menu price', `/shops/${pick(shops)}/change-menu-price`, { menuId: pick(MENU), price: 1000 + 100 * Math.floor(Math.random() * 90) });
  } else if (roll < 0.7) {
    await command(ctx, 'rename shop', `/shops/${pick(shops)}/rename`, { name: `Shop ${Math.floor(Math.random() * 1e6)}` });
  } else {
    await placeOrder(ctx, pick(shops));
  }
}

/** The read mix: 70% one shop's display, 30% a filtered, sorted page of the list. */
async function readStep(ctx: RunContext): Promise<void> {
  if (Math.random() < 0.7) {
    await send(ctx, 'GET /shops/:id', { method: 'GET', url: `${ctx.target.query}/shops/${pick(ctx.shops)}` });
  } else {
    await send(ctx, 'GET /shops?', { method: 'GET', url: `${ctx.target.query}/shops?category=${pick(CATEGORIES)}&sort=${pick(SORTS)}&limit=20` });
  }
}

/**
 * A write, then a read of the same shop that must show it: `X-Min-Position` makes
 * converge wait for its view; the baselines read their own tables, which the write
 * already changed. Records the pair's lag and whether the read was stale.
 */
export async function writeThenRead(ctx: RunContext, shopId: string, kind: string): Promise<void> {
  const write = await command(ctx, `${kind}: write`, `/shops/${shopId}/rename`, { name: `Shop ${Math.floor(Math.random() * 1e6)}` });
  if (!ok(write)) return;
  const { version, position } = json(write.body);
  const headers: Record<string, string> = typeof position === 'number' ? { 'x-min-position': String(position) } : {};
  const read = await send(ctx, `${kind}: read`, { method: 'GET', url: `${ctx.target.query}/shops/${shopId}?waitMs=5000`, headers });
  // A read that failed (a 504 not_caught_up, a timeout) did not show the write: stale, not dropped.
  if (!ok(read)) return ctx.rec.lag(read.ms, false);
  const seen = json(read.body).version;
  ctx.rec.lag(read.ms, typeof seen === 'number' && typeof version === 'number' && seen >= version);
}

/** The scenarios of `npm run load`, by name. */
export const scenarios: Readonly<Record<string, Scenario>> = {
  commands: {
    name: 'commands',
    description: 'mixed shop, order and review commands over all seeded shops',
    step: (ctx) => commandStep(ctx, ctx.shops),
  },
  reads: {
    name: 'reads',
    description: '70% GET /shops/:id, 30% GET /shops?category&sort (list pages)',
    step: readStep,
  },
  mixed: {
    name: 'mixed',
    description: '80% reads, 20% commands, chosen per request',
    step: (ctx) => (Math.random() < 0.8 ? readStep(ctx) : commandStep(ctx, ctx.shops)),
  },
  contention: {
    name: 'contention',
    description: 'every connection writes to a few hot shops (--hot, default 4): menu prices, names and orders',
    step: (ctx) => {
      const shopId = ctx.shops[Math.floor(Math.random() * Math.min(ctx.hot, ctx.shops.length))]!;
      const roll = Math.random();
      if (roll < 0.5) return command(ctx, 'change menu price', `/shops/${shopId}/change-menu-price`, { menuId: pick(MENU), price: 1000 + 100 * Math.floor(Math.random() * 90) }).then(() => undefined);
      if (roll < 0.75) return command(ctx, 'rename shop', `/shops/${shopId}/rename`, { name: `Hot ${Math.floor(Math.random() * 1e6)}` }).then(() => undefined);
      return placeOrder(ctx, shopId);
    },
  },
  bare: {
    name: 'bare',
    description: 'GET /health on the query port: a bare Fastify route in the same processes, the ceiling for reads',
    step: (ctx) => send(ctx, 'GET /health', { method: 'GET', url: `${ctx.target.query}/health` }).then(() => undefined),
  },
  'read-your-writes': {
    name: 'read-your-writes',
    description: 'rename a shop, then read it with X-Min-Position; every read must show the write',
    step: (ctx) => writeThenRead(ctx, pick(ctx.shops), 'ryw'),
  },
};

/**
 * Registers and opens `count` shops with three menu items each, then gives each a little
 * history (`orders` delivered orders with a review each), so that reads which aggregate
 * over orders and reviews, as a CRUD display does, have rows to aggregate.
 */
export async function seed(ctx: Omit<RunContext, 'shops' | 'orders'>, count: number, orders: number, parallel = 32): Promise<string[]> {
  const shops = Array.from({ length: count }, (_, i) => `${ctx.prefix}s${i}`);
  const run = async (shopId: string, i: number) => {
    const post = async (path: string, body: object = {}) => {
      const answer = await ctx.client.send({ method: 'POST', url: ctx.target.command + path, body });
      if (!ok(answer)) throw new Error(`seeding ${path}: ${answer.status} ${answer.body}`);
    };
    await post(`/shops/${shopId}/register`, { name: `Shop ${i}`, category: CATEGORIES[i % CATEGORIES.length]!, ownerId: `owner${i}` });
    await post(`/shops/${shopId}/open`);
    for (const [k, menuId] of MENU.entries()) await post(`/shops/${shopId}/add-menu-item`, { menuId, name: `Dish ${k}`, price: 1000 + 500 * k });
    for (let o = 0; o < orders; o++) {
      const orderId = `${shopId}-o${o}`;
      await post(`/orders/${orderId}/place`, { shopId, customerId: `c${o}`, items: [{ menuId: 'm1', quantity: 1 }] });
      await post(`/orders/${orderId}/accept`);
      await post(`/orders/${orderId}/deliver`);
      await post(`/reviews/${orderId}-r/post`, { orderId, customerId: `c${o}`, rating: 1 + ((i + o) % 5), text: 'seeded' });
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < shops.length) {
        const i = next++;
        await run(shops[i]!, i);
      }
    }),
  );
  return shops;
}
