import { Type, type Static } from 'typebox';

/**
 * The reference app's own settings, beside converge's in the configuration: set in
 * `config/*.json` or as `CONVERGE_ORDERS_ACCEPT_TIMEOUT_MS`, validated at start, and given to
 * the processes as `settings`.
 */
export const shopPlatformSettings = Type.Object(
  {
    orders: Type.Object(
      {
        acceptTimeoutMs: Type.Integer({
          minimum: 1000,
          default: 600_000,
          description: 'an order its shop has not accepted within this long is rejected with reason not_accepted_in_time',
        }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** The settings as the processes read them. */
export type ShopPlatformSettings = Static<typeof shopPlatformSettings>;
