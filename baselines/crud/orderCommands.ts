import type { Static } from 'typebox';
import type { EmptyBody } from '../../actors/shared.schemas.js';
import type { PlaceOrderBody, ReasonBody } from '../../actors/order/order.commands.js';
import type { PostReviewBody } from '../../actors/review/review.commands.js';
import type { Command, Outcome } from './commands.js';

const rejected = (reason: string): Outcome => ({ ok: false, reason });

interface MenuRow {
  readonly open: boolean;
  readonly min_order_amount: number;
  readonly delivery_fee: number;
  /** Null on the one row of a shop that has none of the requested items. */
  readonly menu_id: string | null;
  readonly name: string;
  readonly price: number;
  readonly sold_out: boolean;
}

/**
 * Names and prices come from the menu, never from the client. The shop row is share-locked
 * so that it cannot close or reprice between these checks and the commit; every item is
 * checked for existence before any for stock, as the order decider does.
 */
const place: Command<Static<typeof PlaceOrderBody>> = async (db, id, { shopId, customerId, items }) => {
  const existing = await db.query('SELECT 1 FROM orders WHERE id = $1', [id]);
  if (existing.rowCount) return rejected('already_placed');
  const { rows } = await db.query<MenuRow>(
    `SELECT s.open, s.min_order_amount, s.delivery_fee, m.menu_id, m.name, m.price, m.sold_out
     FROM shops s LEFT JOIN menu_items m ON m.shop_id = s.id AND m.menu_id = ANY ($2::text[])
     WHERE s.id = $1 FOR SHARE OF s`,
    [shopId, items.map((item) => item.menuId)],
  );
  const shop = rows[0];
  if (!shop) return rejected('shop_not_found');
  if (!shop.open) return rejected('shop_closed');
  const menu = new Map(rows.map((row) => [row.menu_id, row]));
  const lines = items.map(({ menuId, quantity }) => ({ menuId, quantity, item: menu.get(menuId) }));
  if (lines.some((line) => !line.item)) return rejected('menu_not_found');
  if (lines.some((line) => line.item?.sold_out)) return rejected('menu_sold_out');
  const total = lines.reduce((sum, line) => sum + (line.item?.price ?? 0) * line.quantity, 0);
  if (total < shop.min_order_amount) return rejected('below_min_order');

  // A concurrent `place` of the same id may have won since the first check.
  const inserted = await db.query<{ version: number }>(
    `INSERT INTO orders (id, shop_id, customer_id, status, total, delivery_fee) VALUES ($1, $2, $3, 'placed', $4, $5)
     ON CONFLICT (id) DO NOTHING RETURNING version`,
    [id, shopId, customerId, total, shop.delivery_fee],
  );
  const version = inserted.rows[0]?.version;
  if (version === undefined) return rejected('already_placed');
  await db.query(
    `INSERT INTO order_lines (order_id, line_no, menu_id, name, price, quantity)
     SELECT $1, l.n, l.menu_id, l.name, l.price, l.quantity
     FROM unnest($2::text[], $3::text[], $4::int[], $5::int[]) WITH ORDINALITY AS l (menu_id, name, price, quantity, n)`,
    [id, lines.map((l) => l.menuId), lines.map((l) => l.item?.name), lines.map((l) => l.item?.price), lines.map((l) => l.quantity)],
  );
  return { ok: true, version };
};

/**
 * A lifecycle step: allowed only from the listed statuses (the same table as
 * actors/order/order.lifecycle.ts), refused as `invalid_transition` from any other.
 */
function transition<B extends { reason?: string }>(from: readonly string[], to: string): Command<B> {
  return async (db, id, body) => {
    const { rows } = await db.query<{ status: string }>('SELECT status FROM orders WHERE id = $1 FOR UPDATE', [id]);
    const status = rows[0]?.status;
    if (status === undefined) return rejected('order_not_found');
    if (!from.includes(status)) return rejected('invalid_transition');
    const updated = await db.query<{ version: number }>(
      `UPDATE orders SET status = $2, reason = COALESCE($3, reason), version = version + 1, updated_at = now()
       WHERE id = $1 RETURNING version`,
      [id, to, body.reason ?? null],
    );
    return { ok: true, version: updated.rows[0]?.version ?? 0 };
  };
}

/** The order commands, by URL segment. */
export const orderCommands = {
  place,
  accept: transition<Static<typeof EmptyBody>>(['placed'], 'accepted'),
  reject: transition<Static<typeof ReasonBody>>(['placed'], 'rejected'),
  deliver: transition<Static<typeof EmptyBody>>(['accepted'], 'delivered'),
  cancel: transition<Static<typeof ReasonBody>>(['placed', 'accepted'], 'cancelled'),
};

/**
 * A review id is used once, even after deletion. The order needs no lock: `delivered` is
 * final, and the shop is taken from the order, not from the client.
 */
const post: Command<Static<typeof PostReviewBody>> = async (db, id, { orderId, customerId, rating, text }) => {
  const existing = await db.query('SELECT 1 FROM reviews WHERE id = $1', [id]);
  if (existing.rowCount) return rejected('already_reviewed');
  const { rows } = await db.query<{ shop_id: string; status: string }>('SELECT shop_id, status FROM orders WHERE id = $1', [orderId]);
  const order = rows[0];
  if (order?.status !== 'delivered') return rejected('order_not_delivered');
  const inserted = await db.query<{ version: number }>(
    `INSERT INTO reviews (id, order_id, shop_id, customer_id, rating, text) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO NOTHING RETURNING version`,
    [id, orderId, order.shop_id, customerId, rating, text],
  );
  const version = inserted.rows[0]?.version;
  return version === undefined ? rejected('already_reviewed') : { ok: true, version };
};

const remove: Command<Static<typeof EmptyBody>> = async (db, id) => {
  const { rows } = await db.query<{ deleted: boolean }>('SELECT deleted FROM reviews WHERE id = $1 FOR UPDATE', [id]);
  if (rows[0]?.deleted !== false) return rejected('review_not_found');
  const updated = await db.query<{ version: number }>(
    'UPDATE reviews SET deleted = true, version = version + 1, updated_at = now() WHERE id = $1 RETURNING version',
    [id],
  );
  return { ok: true, version: updated.rows[0]?.version ?? 0 };
};

/** The review commands, by URL segment. */
export const reviewCommands = { post, delete: remove };
