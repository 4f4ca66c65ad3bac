import type { Pool, PoolClient } from 'pg';
import type { Static } from 'typebox';
import type { EmptyBody } from '../../actors/shared.schemas.js';
import type {
  AddMenuItemBody, ChangeDeliveryInfoBody, ChangeMenuPriceBody, MenuItemBody, RegisterShopBody, RenameShopBody,
} from '../../actors/shop/shop.commands.js';
import type { PlaceOrderBody, ReasonBody } from '../../actors/order/order.commands.js';
import type { PostReviewBody } from '../../actors/review/review.commands.js';
import { MAX_MENU_ITEMS } from '../../actors/shop/shop.decider.js';

/** What a command did: the entity's new version, or the business reason it was refused. */
export type Outcome = { readonly ok: true; readonly version: number } | { readonly ok: false; readonly reason: string };

/** One command: checks and writes inside the transaction it is given. */
export type Command<B> = (db: PoolClient, id: string, body: B) => Promise<Outcome>;

const rejected = (reason: string): Outcome => ({ ok: false, reason });

/**
 * Runs a command in one transaction. A refusal rolls back, though a command refuses
 * before it writes; a thrown error rolls back and, if even that fails, discards the
 * connection rather than return a broken one to the pool.
 */
export async function inTransaction<B>(pool: Pool, command: Command<B>, id: string, body: B): Promise<Outcome> {
  const db = await pool.connect();
  try {
    await db.query('BEGIN');
    const outcome = await command(db, id, body);
    await db.query(outcome.ok ? 'COMMIT' : 'ROLLBACK');
    db.release();
    return outcome;
  } catch (err) {
    const broken = await db.query('ROLLBACK').then(() => undefined, (e: Error) => e);
    db.release(broken);
    throw err;
  }
}

// Shops. Every command but `register` locks the shop row first, so commands on one shop
// run one at a time and the version counts them exactly.

async function lockShop(db: PoolClient, id: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM shops WHERE id = $1 FOR UPDATE', [id]);
  return rowCount === 1;
}

/** Bumps the shop's version, with any column changes in `set` ($2… are `params`). */
async function bumpShop(db: PoolClient, id: string, set = '', params: unknown[] = []): Promise<Outcome> {
  const { rows } = await db.query<{ version: number }>(
    `UPDATE shops SET ${set} version = version + 1, updated_at = now() WHERE id = $1 RETURNING version`,
    [id, ...params],
  );
  return { ok: true, version: rows[0]?.version ?? 0 };
}

/** A shop command with no rule beyond "the shop exists" that sets some columns. */
function updateShop<B>(set: string, params: (body: B) => unknown[]): Command<B> {
  return async (db, id, body) => ((await lockShop(db, id)) ? bumpShop(db, id, set, params(body)) : rejected('shop_not_registered'));
}

/** A command on one menu item: refused when the item is not on the menu. */
function changeMenuItem<B extends { menuId: string }>(sql: string, params: (body: B) => unknown[] = () => []): Command<B> {
  return async (db, id, body) => {
    if (!(await lockShop(db, id))) return rejected('shop_not_registered');
    const { rowCount } = await db.query(sql, [id, body.menuId, ...params(body)]);
    return rowCount === 1 ? bumpShop(db, id) : rejected('menu_not_found');
  };
}

const addMenuItem: Command<Static<typeof AddMenuItemBody>> = async (db, id, { menuId, name, price }) => {
  if (!(await lockShop(db, id))) return rejected('shop_not_registered');
  const { rows } = await db.query<{ items: number; same: number }>(
    'SELECT count(*)::int AS items, count(*) FILTER (WHERE menu_id = $2)::int AS same FROM menu_items WHERE shop_id = $1',
    [id, menuId],
  );
  if (rows[0]?.same) return rejected('menu_item_exists');
  if ((rows[0]?.items ?? 0) >= MAX_MENU_ITEMS) return rejected('menu_full');
  await db.query('INSERT INTO menu_items (shop_id, menu_id, name, price) VALUES ($1, $2, $3, $4)', [id, menuId, name, price]);
  return bumpShop(db, id);
};

/** The shop commands, by URL segment. */
export const shopCommands = {
  register: (async (db, id, { name, category, ownerId, minOrderAmount = 0, deliveryFee = 0 }) => {
    const { rows } = await db.query<{ version: number }>(
      `INSERT INTO shops (id, name, category, owner_id, min_order_amount, delivery_fee) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO NOTHING RETURNING version`,
      [id, name, category, ownerId, minOrderAmount, deliveryFee],
    );
    return rows[0] ? { ok: true, version: rows[0].version } : rejected('already_registered');
  }) satisfies Command<Static<typeof RegisterShopBody>>,
  rename: updateShop<Static<typeof RenameShopBody>>('name = $2,', (b) => [b.name]),
  open: updateShop<Static<typeof EmptyBody>>('open = true,', () => []),
  close: updateShop<Static<typeof EmptyBody>>('open = false,', () => []),
  changeDeliveryInfo: updateShop<Static<typeof ChangeDeliveryInfoBody>>(
    'min_order_amount = $2, delivery_fee = $3,', (b) => [b.minOrderAmount, b.deliveryFee],
  ),
  addMenuItem,
  changeMenuPrice: changeMenuItem<Static<typeof ChangeMenuPriceBody>>(
    'UPDATE menu_items SET price = $3 WHERE shop_id = $1 AND menu_id = $2', (b) => [b.price],
  ),
  markMenuSoldOut: changeMenuItem<Static<typeof MenuItemBody>>('UPDATE menu_items SET sold_out = true WHERE shop_id = $1 AND menu_id = $2'),
  restockMenuItem: changeMenuItem<Static<typeof MenuItemBody>>('UPDATE menu_items SET sold_out = false WHERE shop_id = $1 AND menu_id = $2'),
  removeMenuItem: changeMenuItem<Static<typeof MenuItemBody>>('DELETE FROM menu_items WHERE shop_id = $1 AND menu_id = $2'),
};
