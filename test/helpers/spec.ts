import type { Test } from 'tap';
import type { Assertions } from '../../src/testing.js';

/** converge/testing's assertions as tap's, so each check of a spec is an assertion of `t`. */
export function tapAssert(t: Test): Assertions {
  // tap's message is an optional tuple element, which an explicit `undefined` does not fit.
  return { deepEqual: (actual, expected, message) => (message === undefined ? t.same(actual, expected) : t.same(actual, expected, message)) };
}
