import t from 'tap';
import { addSample, measureProgress, PROGRESS_WINDOW_MS } from '../../src/read/progress.js';

t.test('the rate is measured from the oldest sample kept, and the ETA is the distance to the target at that rate', async (t) => {
  t.same(measureProgress([{ at: 0, position: 0 }], 4000, 1000, 3000), { ratePerS: 250, etaMs: 8000 });
  t.same(measureProgress([{ at: 0, position: 0 }], 0, 0, 3000), { ratePerS: null, etaMs: null }, 'no time passed: unknown');
  t.same(measureProgress([{ at: 0, position: 500 }], 5000, 500, 3000), { ratePerS: null, etaMs: null }, 'no progress: unknown, never infinite');
  t.same(measureProgress([], 5000, 500, 3000), { ratePerS: null, etaMs: null }, 'no sample: unknown');
  t.same(measureProgress([{ at: 0, position: 0 }], 1000, 3000, 2000), { ratePerS: 3000, etaMs: 0 }, 'past a target that moved: 0 left');
});

t.test('samples older than the window are dropped, except the last one before it', async (t) => {
  let samples = [{ at: 0, position: 0 }];
  for (let at = 1000; at <= 15_000; at += 1000) samples = addSample(samples, { at, position: at / 10 });
  t.equal(samples[0]!.at, 15_000 - PROGRESS_WINDOW_MS - 1000, 'the window starts one sample before its edge');
  t.equal(samples.at(-1)!.at, 15_000);
  t.same(measureProgress(samples, 15_000, 1500, 2500), { ratePerS: 100, etaMs: 10_000 }, 'the rate of the recent past');
});
