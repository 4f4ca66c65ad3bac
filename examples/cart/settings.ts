import { Type, type Static } from 'typebox';

/**
 * The carts' own settings, beside converge's in the configuration: `carts.expireAfterMs` in
 * `config/*.json`, or `CONVERGE_CARTS_EXPIRE_AFTER_MS`; checked at start like converge's own.
 */
export const cartSettings = Type.Object(
  {
    carts: Type.Object(
      {
        expireAfterMs: Type.Integer({ minimum: 1000, default: 86_400_000, description: 'an open cart left untouched this long is cancelled' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** The settings as the process reads them. */
export type CartSettings = Static<typeof cartSettings>;
