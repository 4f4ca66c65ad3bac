import { deepStrictEqual } from 'node:assert/strict';

/** The one assertion the specs make; tap's `t.same` and node's `assert.deepStrictEqual` both fit. */
export interface Assertions {
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
}

/** node:assert's, which throws `AssertionError`. */
export const nodeAssert: Assertions = { deepEqual: (actual, expected, message) => deepStrictEqual(actual, expected, message) };

/** The time stamped on events a spec does not date. */
export const SPEC_TIME = '2026-01-01T00:00:00.000Z';
