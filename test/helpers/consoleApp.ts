import { existsSync } from 'node:fs';
import { defineProjection, defineReactor, runConverge, type StoredEvent } from '../../src/index.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { shopPlatform } from '../../app.js';

// The reference app with one more view, `probe`, for the console's end-to-end test: an
// event it cannot fold parks (and a retry succeeds once the cause is gone), and its fold
// is slow enough that a rebuild lasts long enough to be watched.

/** While this file exists, `probe` cannot fold a rename to `park-me`. */
const parkFile = process.env['CONSOLE_TEST_PARK_FILE'];
/** Milliseconds of work per folded event. */
const foldMs = Number(process.env['CONSOLE_TEST_FOLD_MS'] ?? '0');

const probe = defineProjection<ShopEvent, { renames: number }>({
  name: 'probe',
  version: 1,
  handles: ['ShopRegistered', 'ShopRenamed'],
  key: (_event, meta) => meta.id,
  fold(doc, event) {
    const until = Date.now() + foldMs;
    while (Date.now() < until) {
      // A projection's fold is synchronous: this is what a costly one looks like to the runner.
    }
    if (event.type === 'ShopRenamed' && event.data.name === 'park-me' && parkFile !== undefined && existsSync(parkFile)) {
      throw new Error('probe cannot fold park-me yet');
    }
    return { renames: (doc?.renames ?? 0) + (event.type === 'ShopRenamed' ? 1 : 0) };
  },
});

/** While the same file exists, `probeReactor` cannot handle a rename to `park-me-too`: it retries once, then parks it. */
const probeReactor = defineReactor({
  name: 'probeReactor',
  handles: ['ShopRenamed'],
  onError: { kind: 'retry', times: 1, backoffMs: 50, then: 'park' },
  handle(event: StoredEvent<Extract<ShopEvent, { type: 'ShopRenamed' }>>) {
    if (event.data.name === 'park-me-too' && parkFile !== undefined && existsSync(parkFile)) throw new Error('probeReactor cannot handle park-me-too yet');
  },
});

runConverge({ ...shopPlatform, projections: [...shopPlatform.projections, probe], reactors: [...shopPlatform.reactors, probeReactor] });
