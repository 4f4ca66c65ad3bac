import { loadConfig, runConverge } from '@converge-es/converge';
import { couponsApp } from './app.js';

// `npm run example:coupons`: the coupons app on converge. The cluster primary forks this same
// file for its workers and projector. Its data (the embedded nats-server's store and the
// views) goes to `data/coupons` unless CONVERGE_DATA_DIR says otherwise, apart from the
// reference app's `data`.
runConverge(couponsApp, { config: loadConfig({ env: { CONVERGE_DATA_DIR: 'data/coupons', ...process.env } }) });
