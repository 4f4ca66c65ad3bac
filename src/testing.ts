/**
 * converge/testing: specifications in the given/when/then form, run on converge's own code
 * paths rather than on a copy of them.
 *
 * - `deciderSpec`: the history is folded by the runtime's rehydration (upcasters included),
 *   the command is checked against its schema, then `decide` runs as the actor host runs it.
 * - `projectionSpec`: commits go through the projector's own apply path (upcasters, the
 *   `handles` filter, index entries, checkpoints and the projection's error policy) into
 *   an in-memory view store with LMDB's key order.
 * - `apiSpec`: given commits, when an HTTP request, then its status, body and the events
 *   it appended, on converge's in-process runtime with the in-memory event store and
 *   Fastify's `inject`: the real routes, validation, lookups, actors and projections.
 *
 * - `processSpec` and `reactorSpec`: given commits, when an event or a timer, then these
 *   commands and timers, on the runtime's own decision and recording path.
 *
 * Assertions throw `AssertionError` (node:assert) unless an `assert` of your test
 * framework's is given.
 */
export { nodeAssert, SPEC_TIME, type Assertions } from './testing/assert.js';
export { deciderSpec, type DeciderOutcome, type SpecContext } from './testing/deciderSpec.js';
export { commit, commitAt, projectionSpec, storedCommit, type ProjectionOutcome, type SpecCommit } from './testing/projectionSpec.js';
export { apiSpec, type ApiExpectation, type ApiOutcome, type ApiRequest, type ApiSpecOptions } from './testing/apiSpec.js';
export { processSpec, reactorSpec, type ProcessOutcome } from './testing/processSpec.js';
export { createMemoryEventStore, type MemoryEventStore } from './store/memory.js';
export { manualClock, type ManualClock } from './core/clock.js';
