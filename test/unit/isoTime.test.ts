import t from 'tap';
import { isoTime } from '../../src/core/clock.js';

t.test('isoTime writes what toISOString writes, across seconds, milliseconds and unusual years', async (t) => {
  const base = Date.parse('2026-12-07T06:59:58.990Z');
  const times = [
    ...Array.from({ length: 2100 }, (_, i) => base + i), // through two second boundaries, every millisecond
    base, base + 5, base + 50, base - 1000, // back to a second written before
    0, -1, -999, -1000, -1001, // around the epoch
    Date.parse('9999-12-31T23:59:59.999Z'), Date.parse('+010000-01-01T00:00:00.001Z'), Date.parse('-000001-06-01T12:00:00.007Z'),
    base + 7,
  ];
  const wrong = times.filter((ms) => isoTime(ms) !== new Date(ms).toISOString());
  t.same(wrong.map((ms) => [ms, isoTime(ms), new Date(ms).toISOString()]), [], 'no time differs');
});
