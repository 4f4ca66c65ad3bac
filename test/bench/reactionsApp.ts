import { runConverge } from '@converge-es/converge';
import { shopPlatform } from '../../app.js';

// The reference app as `npm start` runs it, or, with BENCH_REACTIONS=off, without its
// reactors and processes: what test/bench/timers.ts compares, and the load tool's
// `converge-no-reactions` target.
runConverge(process.env['BENCH_REACTIONS'] === 'off' ? { ...shopPlatform, reactors: [], processes: [] } : shopPlatform);
