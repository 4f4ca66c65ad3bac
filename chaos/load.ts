import { json, type HttpClient, type Reply } from './http.js';
import { prng } from './schedule.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An acknowledged (2xx) command: what the event store must hold exactly once, at `position`. */
export interface Ack {
  readonly key: string;
  readonly aggregate: 'shop' | 'order';
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
  stage: 'registered' | 'open' | 'ready';
  menuItems: number;
}
interface OrderState {
  id: string;
  shopId: string;
  status: 'placed' | 'accepted' | 'delivered';
}

/**
 * One client of the reference domain: it registers and opens its own shops, changes their
 * names, menus and prices, places orders and moves them along, and after each
 * acknowledged command reads the shop back with `X-Min-Position` of its last ack.
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
  let epoch = -1;
  let shops: ShopState[] = [];
  let orders: OrderState[] = [];
  let lastPosition = 0;
  let n = 0;
  while (!stopped()) {
    if (epoch !== target.epoch()) {
      // A fresh store knows none of the old shops, and its positions start again at 1.
      epoch = target.epoch();
      shops = [];
      orders = [];
      lastPosition = 0;
    }
    n++;
    const key = `chaos-${epoch}-${client}-${n}`;
    const ready = shops.filter((s) => s.stage === 'ready');
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
    const roll = random();
    let aggregate: 'shop' | 'order' = 'shop';
    let id: string;
    let command: string;
    let body: object = {};
    let apply: () => void;
    let readShop: string;
    const unfinished = shops.find((s) => s.stage !== 'ready');
    if (unfinished) {
      id = unfinished.id;
      readShop = id;
      if (unfinished.stage === 'registered') {
        command = 'open';
        apply = () => void (unfinished.stage = 'open');
      } else {
        command = 'add-menu-item';
        body = { menuId: 'm1', name: 'kimbap', price: 4000 };
        apply = () => ((unfinished.stage = 'ready'), (unfinished.menuItems = 1));
      }
    } else if (ready.length === 0 || (roll < 0.08 && shops.length < 6)) {
      const shop: ShopState = { id: `shop-${epoch}-${client}-${shops.length}`, stage: 'registered', menuItems: 0 };
      id = shop.id;
      readShop = id;
      command = 'register';
      body = { name: `shop ${client}.${shops.length}`, category: pick(['korean', 'chicken', 'pizza']), ownerId: `owner-${client}`, minOrderAmount: 0 };
      apply = () => void shops.push(shop);
    } else {
      const placed = orders.filter((o) => o.status !== 'delivered');
      if (roll < 0.4) {
        const shop = pick(ready);
        id = shop.id;
        readShop = id;
        const kind = random();
        if (kind < 0.3) {
          command = 'rename';
          body = { name: `shop ${client} ${n}` };
          apply = () => undefined;
        } else if (kind < 0.8 || shop.menuItems >= 30) {
          command = 'change-menu-price';
          body = { menuId: `m${1 + Math.floor(random() * shop.menuItems)}`, price: 100 * (10 + Math.floor(random() * 500)) };
          apply = () => undefined;
        } else {
          command = 'add-menu-item';
          body = { menuId: `m${shop.menuItems + 1}`, name: `dish ${shop.menuItems + 1}`, price: 5000 };
          apply = () => void (shop.menuItems += 1);
        }
      } else if (roll < 0.7 || placed.length === 0) {
        const shop = pick(ready);
        const order: OrderState = { id: `order-${epoch}-${client}-${n}`, shopId: shop.id, status: 'placed' };
        aggregate = 'order';
        id = order.id;
        readShop = shop.id;
        command = 'place';
        body = { shopId: shop.id, customerId: `customer-${client}`, items: [{ menuId: 'm1', quantity: 1 + Math.floor(random() * 3) }] };
        apply = () => void orders.push(order);
      } else {
        const order = pick(placed);
        aggregate = 'order';
        id = order.id;
        readShop = order.shopId;
        command = order.status === 'placed' ? 'accept' : 'deliver';
        apply = () => void (order.status = order.status === 'placed' ? 'accepted' : 'delivered');
      }
    }
    const reply = await sendCommand(http, `${target.command}/${aggregate}s/${id}/${command}`, key, body, tally, stopped);
    const position = reply && reply.status < 300 ? json<{ position?: number }>(reply)?.position : undefined;
    if (reply && reply.status < 300) {
      tally.acknowledged++;
      // The epoch is the one in force when the answer came: the old cluster is gone before a fresh store is started.
      const ackEpoch = target.epoch();
      acks.push({ key, aggregate, id, position: typeof position === 'number' ? position : -1, epoch: ackEpoch, at: Date.now() });
      if (ackEpoch === epoch && typeof position === 'number') {
        apply();
        lastPosition = Math.max(lastPosition, position);
      }
    }
    // A position of a store that is gone says nothing about the new one.
    if (stopped() || epoch !== target.epoch()) continue;
    tally.reads++;
    const read = await http.send({
      method: 'GET',
      url: `${target.query}/shops/${readShop}?waitMs=10000`,
      headers: lastPosition > 0 ? { 'x-min-position': String(lastPosition) } : {},
      timeoutMs: 12_000,
    });
    if (read.status === 200 || read.status === 404) tally.readsOk++;
    await sleep(20);
  }
}
