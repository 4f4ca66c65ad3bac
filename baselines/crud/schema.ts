import type { Pool } from 'pg';

/**
 * The tables of the CRUD baseline: current state only, one row per entity, each with a
 * `version` bumped on every change. Amounts are integer KRW. An order's total is bigint
 * because 50 lines × 99 × 1,000,000 does not fit an integer.
 */
const ddl = `
DROP TABLE IF EXISTS reviews, order_lines, orders, menu_items, shops CASCADE;

CREATE TABLE shops (
  id               text PRIMARY KEY,
  name             text NOT NULL,
  category         text NOT NULL,
  owner_id         text NOT NULL,
  open             boolean NOT NULL DEFAULT false,
  min_order_amount integer NOT NULL,
  delivery_fee     integer NOT NULL,
  version          integer NOT NULL DEFAULT 1,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shops_category_idx ON shops (category);
CREATE INDEX shops_created_at_idx ON shops (created_at DESC);

CREATE TABLE menu_items (
  shop_id  text NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  menu_id  text NOT NULL,
  name     text NOT NULL,
  price    integer NOT NULL,
  sold_out boolean NOT NULL DEFAULT false,
  -- Insertion order: the menu is shown in the order items were added.
  position bigint GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (shop_id, menu_id)
);

CREATE TABLE orders (
  id           text PRIMARY KEY,
  shop_id      text NOT NULL REFERENCES shops (id),
  customer_id  text NOT NULL,
  status       text NOT NULL CHECK (status IN ('placed', 'accepted', 'delivered', 'rejected', 'cancelled')),
  total        bigint NOT NULL,
  delivery_fee integer NOT NULL,
  reason       text,
  version      integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_shop_id_idx ON orders (shop_id);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);

CREATE TABLE order_lines (
  order_id text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_no  integer NOT NULL,
  menu_id  text NOT NULL,
  name     text NOT NULL,
  price    integer NOT NULL,
  quantity integer NOT NULL,
  PRIMARY KEY (order_id, line_no)
);

CREATE TABLE reviews (
  id          text PRIMARY KEY,
  order_id    text NOT NULL REFERENCES orders (id),
  shop_id     text NOT NULL REFERENCES shops (id),
  customer_id text NOT NULL,
  rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
  text        text NOT NULL,
  deleted     boolean NOT NULL DEFAULT false,
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_shop_id_idx ON reviews (shop_id);
`;

/**
 * Drops and recreates every table. This is a benchmark baseline: each run starts from an
 * empty database, so there are no migrations and any existing data is thrown away.
 */
export async function createSchema(pool: Pool): Promise<void> {
  await pool.query(ddl);
}
