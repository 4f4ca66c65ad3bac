import { json, type HttpClient, type Reply } from './http.js';
import { prng } from './schedule.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An acknowledged (2xx) command: what the event store must hold exactly once, at `position`. */
export interface Ack {
  readonly key: string;
  readonly aggregate: 'shop' | 'order' | 'review';
  readonly id: string;
  readonly position: number;
  /** The store epoch it was acknowledged in (a fresh store starts a new one). */
  readonly epoch: number;
  readonly at: number;
}

/** What the load's commands came to. */
export interface CommandTally {
  sent: number;
  acknowledged: number;
  rejected: number;
  retries: number;
  /** Commands given up on after the last try, with their last answer. */
  abandoned: number;
  abandonedSamples: string[];
  reads: number;
  readsOk: number;
}

/** Where the load sends its requests, and the current store epoch. */
export interface LoadTarget {
  readonly command: string;
  readonly query: string;
  epoch(): number;
}

const MAX_TRIES = 40;
const MAX_COMMAND_MS = 25_000;

/**
 * Sends one command the way a careful client does: one `Idempotency-Key` for every try,
 * retried on 503 (after `Retry-After`), `outcome_unknown` and connection failures until a
 * 2xx or 4xx answer, backing off from 200 ms to 2 s, at most `MAX_TRIES` times and `MAX_COMMAND_MS` in all.
 */
export async function sendCommand(
  http: HttpClient,
  url: string,
  key: string,
  body: object,
  tally: CommandTally,
  stopped: () => boolean,
): Promise<Reply | undefined> {
  tally.sent++;
  const deadline = Date.now() + MAX_COMMAND_MS;
  let last: Reply | undefined;
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    if (attempt > 1) tally.retries++;
    last = await http.send({ method: 'POST', url, body, headers: { 'idempotency-key': key } });
    if (last.status >= 200 && last.status < 500 && last.status !== 0) {
      if (last.status >= 300) tally.rejected++;
      return last;
    }
    const retryable = last.status === 0 || last.status === 503 || (last.status === 504 && last.code === 'outcome_unknown');
    if (!retryable || Date.now() > deadline || stopped()) break;
    const advice = last.retryAfter ? Number(last.retryAfter) * 1000 : NaN;
    await sleep(Number.isFinite(advice) ? Math.min(Math.max(advice, 100), 2000) : Math.min(2000, 200 * 2 ** Math.min(attempt - 1, 4)));
  }
  tally.abandoned++;
  if (tally.abandonedSamples.length < 20) tally.abandonedSamples.push(`${url} ${key}: ${last ? describe(last) : 'not sent'}`);
  return undefined;
}

/** A reply in one phrase for the report. */
export function describe(reply: Reply): string {
  return reply.status === 0 ? `no answer (${reply.failure ?? '?'})` : `${reply.status} ${reply.code ?? ''}`.trim();
}

interface ShopState {
  id: string;
  /** `closed`: closed by this client, to be opened again from `reopenAt`. */
  stage: 'registered' | 'open' | 'ready' | 'closed';
  menuItems: number;
  reopenAt: number;
}

/**
 * What a client means to do with an order it places: accept it (then deliver it, and with
 * `review` post a review of it), cancel it, or leave it to the accept timer, which rejects it.
 */
type OrderPlan = 'accept' | 'cancel' | 'leave';

interface OrderState {
  id: string;
  shopId: string;
  status: 'placed' | 'accepted' | 'delivered';
  plan: OrderPlan;
  review: boolean;
}

/** The command a client sends next, and what its answer changes in what the client knows. */
interface Step {
  aggregate: Ack['aggregate'];
  id: string;
  command: string;
  body: object;
  /** The shop read back after it. */
  readShop: string;
  /** On acknowledgement. */
  apply(): void;
  /** On a refusal (4xx): a process settled the order first (the accept timer, a closed shop). */
  refused?(): void;
}

/** What one client knows of its own shops and orders in the current store epoch. */
interface ClientState {
  readonly client: number;
  readonly epoch: number;
  readonly random: () => number;
  shops: ShopState[];
  /** Orders the client still means to move along; those left to the accept timer are not kept. */
  orders: OrderState[];
}

/**
 * One client of the reference domain: it registers and opens its own shops, changes their
 * names, menus and prices, now and then closes one for a few seconds, places orders and
 * accepts, cancels, delivers and reviews some of them while leaving others to the accept
 * timer, and after each acknowledged command reads the shop back with `X-Min-Position` of
 * its last ack.
 */
export async function runClient(
  client: number,
  seed: number,
  http: HttpClient,
  target: LoadTarget,
  acks: Ack[],
  tally: CommandTally,
  stopped: () => boolean,
): Promise<void> {
  const random = prng(seed * 1000 + client);
  let state: ClientState = { client, epoch: -1, random, shops: [], orders: [] };
  let lastPosition = 0;
  let n = 0;
  while (!stopped()) {
    if (state.epoch !== target.epoch()) {
      // A fresh store knows none of the old shops, and its positions start again at 1.
      state = { client, epoch: target.epoch(), random, shops: [], orders: [] };
      lastPosition = 0;
    }
    const { epoch } = state;
    n++;
    const key = `chaos-${epoch}-${client}-${n}`;
    const step = nextStep(state, n);
    const reply = await sendCommand(http, `${target.command}/${step.aggregate}s/${step.id}/${step.command}`, key, step.body, tally, stopped);
    const position = reply && reply.status < 300 ? json<{ position?: number }>(reply)?.position : undefined;
    if (reply && reply.status < 300) {
      tally.acknowledged++;
      // The epoch is the one in force when the answer came: the old cluster is gone before a fresh store is started.
      const ackEpoch = target.epoch();
      acks.push({ key, aggregate: step.aggregate, id: step.id, position: typeof position === 'number' ? position : -1, epoch: ackEpoch, at: Date.now() });
      if (ackEpoch === epoch && typeof position === 'number') {
        step.apply();
        lastPosition = Math.max(lastPosition, position);
      }
    } else if (reply && epoch === target.epoch()) {
      step.refused?.();
    }
    // A position of a store that is gone says nothing about the new one.
    if (stopped() || epoch !== target.epoch()) continue;
    tally.reads++;
    const read = await http.send({
      method: 'GET',
      url: `${target.query}/shops/${step.readShop}?waitMs=10000`,
      headers: lastPosition > 0 ? { 'x-min-position': String(lastPosition) } : {},
      timeoutMs: 12_000,
    });
    if (read.status === 200 || read.status === 404) tally.readsOk++;
    await sleep(20);
  }
}

/** The client's next command: a shop to finish or reopen first, otherwise one drawn from the mix. */
function nextStep(state: ClientState, n: number): Step {
  const { client, epoch, random, shops } = state;
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const now = Date.now();
  const unfinished = shops.find((s) => s.stage === 'registered' || s.stage === 'open' || (s.stage === 'closed' && now >= s.reopenAt));
  if (unfinished) {
    const id = unfinished.id;
    if (unfinished.stage === 'registered') return { aggregate: 'shop', id, readShop: id, command: 'open', body: {}, apply: () => void (unfinished.stage = 'open') };
    if (unfinished.stage === 'closed') return { aggregate: 'shop', id, readShop: id, command: 'open', body: {}, apply: () => void (unfinished.stage = 'ready') };
    return {
      aggregate: 'shop',
      id,
      readShop: id,
      command: 'add-menu-item',
      body: { menuId: 'm1', name: 'kimbap', price: 4000 },
      apply: () => ((unfinished.stage = 'ready'), (unfinished.menuItems = 1)),
    };
  }
  const ready = shops.filter((s) => s.stage === 'ready');
  const roll = random();
  if (ready.length === 0 || (roll < 0.08 && shops.length < 6)) {
    const shop: ShopState = { id: `shop-${epoch}-${client}-${shops.length}`, stage: 'registered', menuItems: 0, reopenAt: 0 };
    const body = { name: `shop ${client}.${shops.length}`, category: pick(['korean', 'chicken', 'pizza']), ownerId: `owner-${client}`, minOrderAmount: 0 };
    return { aggregate: 'shop', id: shop.id, readShop: shop.id, command: 'register', body, apply: () => void shops.push(shop) };
  }
  if (roll < 0.4) return shopStep(state, pick(ready), ready.length, n);
  if (roll < 0.65 || state.orders.length === 0) {
    const shop = pick(ready);
    const plan = random();
    const order: OrderState = { id: `order-${epoch}-${client}-${n}`, shopId: shop.id, status: 'placed', plan: plan < 0.5 ? 'accept' : plan < 0.6 ? 'cancel' : 'leave', review: random() < 0.3 };
    const body = { shopId: shop.id, customerId: `customer-${client}`, items: [{ menuId: 'm1', quantity: 1 + Math.floor(random() * 3) }] };
    // An order left to the accept timer needs nothing more from the client.
    return { aggregate: 'order', id: order.id, readShop: shop.id, command: 'place', body, apply: () => void (order.plan !== 'leave' && state.orders.push(order)) };
  }
  // The oldest order waiting for its shop first: it has orders.acceptTimeoutMs before the timer rejects it.
  return orderStep(state, state.orders.find((o) => o.status === 'placed') ?? pick(state.orders), n);
}

/** A change to one of the client's ready shops: its name, its menu, or closing it for a few seconds. */
function shopStep(state: ClientState, shop: ShopState, readyShops: number, n: number): Step {
  const { client, random } = state;
  const base = { aggregate: 'shop' as const, id: shop.id, readShop: shop.id, apply: () => undefined };
  const kind = random();
  // Closing a shop makes closedShopOrders reject its waiting orders; the client keeps another shop open meanwhile.
  if (kind < 0.02 && readyShops >= 2) {
    const closedForMs = 1000 + Math.floor(random() * 2000);
    return { ...base, command: 'close', body: {}, apply: () => ((shop.stage = 'closed'), (shop.reopenAt = Date.now() + closedForMs)) };
  }
  if (kind < 0.3) return { ...base, command: 'rename', body: { name: `shop ${client} ${n}` } };
  if (kind < 0.8 || shop.menuItems >= 30) {
    return { ...base, command: 'change-menu-price', body: { menuId: `m${1 + Math.floor(random() * shop.menuItems)}`, price: 100 * (10 + Math.floor(random() * 500)) } };
  }
  return { ...base, command: 'add-menu-item', body: { menuId: `m${shop.menuItems + 1}`, name: `dish ${shop.menuItems + 1}`, price: 5000 }, apply: () => void (shop.menuItems += 1) };
}

/** The next move of one of the client's orders: accept or cancel it, deliver it, or review it once delivered. */
function orderStep(state: ClientState, order: OrderState, n: number): Step {
  const { client, epoch, random } = state;
  const done = () => void (state.orders = state.orders.filter((o) => o !== order));
  const base = { aggregate: 'order' as const, id: order.id, readShop: order.shopId, body: {}, refused: done };
  if (order.status === 'placed' && order.plan === 'cancel') return { ...base, command: 'cancel', body: { reason: 'changed_mind' }, apply: done };
  if (order.status === 'placed') return { ...base, command: 'accept', apply: () => void (order.status = 'accepted') };
  if (order.status === 'accepted') return { ...base, command: 'deliver', apply: () => (order.review ? void (order.status = 'delivered') : done()) };
  const body = { orderId: order.id, customerId: `customer-${client}`, rating: 1 + Math.floor(random() * 5), text: 'chaos' };
  return { ...base, aggregate: 'review', id: `review-${epoch}-${client}-${n}`, command: 'post', body, apply: done };
}
