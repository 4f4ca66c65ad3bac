import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { AnyAggregate, NameOf } from '../core/aggregate.js';
import type { AnyReactor } from '../core/reactions.js';
import { manualClock, type Clock } from '../core/clock.js';
import type { ConvergeApp } from '../host/app.js';
import type { ConfigOverrides } from '../host/config.js';
import { createConverge, type AppServices, type Converge } from '../host/runtime.js';
import { createMemoryEventStore } from '../store/memory.js';
import { nodeAssert, SPEC_TIME, type Assertions } from './assert.js';
import { storedCommits, type SpecCommit } from './projectionSpec.js';

/** An HTTP request, as Fastify's `inject` takes it. */
export interface ApiRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the response must be; each part given is asserted. */
export interface ApiExpectation<N extends string = string> {
  readonly status?: number;
  /** The JSON body, compared whole. */
  readonly body?: unknown;
  /** These headers, with these values (names in lower case). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The commits the request appended, in order (`commit(cart, id, ...events)`); `[]`: none. */
  readonly events?: readonly SpecCommit<N>[];
}

/** What the request came to, for assertions of your own. */
export interface ApiOutcome {
  readonly status: number;
  /** The body parsed as JSON, or undefined when empty. */
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string | string[] | number | undefined>>;
  /** The commits the request appended: aggregate, id and events (type and data). */
  readonly events: ReadonlyArray<{ readonly aggregate: string; readonly id: string; readonly events: ReadonlyArray<{ readonly type: string; readonly data: object }> }>;
}

/** How `apiSpec` runs the app. */
export interface ApiSpecOptions<A extends AnyAggregate, R extends AnyReactor = never> {
  /** What the lookups and reactors are given as `services` (a price list that answers from a map, say). */
  readonly services?: AppServices<A, R>;
  /** The runtime's clock; by default one standing at `SPEC_TIME`. */
  readonly clock?: Clock;
  /** Configuration over the defaults (tokens, read policy, ...). */
  readonly config?: ConfigOverrides;
  /**
   * Builds the Fastify app requests go to, when converge's routes live in your own app:
   * `async (converge) => { const app = Fastify(); await app.register(converge.commandRoutes, { prefix: '/api' }); return app; }`.
   * By default: converge's command and query routes, unprefixed.
   */
  readonly build?: (converge: Converge<A>) => FastifyInstance | Promise<FastifyInstance>;
  readonly assert?: Assertions;
}

/**
 * Given/when/then at the HTTP level, on the runtime itself: the given commits go into an
 * in-memory event store, `createConverge` runs the app on it (routes, validation, lookups,
 * actors, projections), the request goes through Fastify's `inject` once the views have
 * caught up with the given commits, and the status, body, headers and appended commits are
 * checked. No NATS, no port. The app's reactors and processes do not run: what is checked is
 * what the request itself did (`processSpec` and `reactorSpec` test the reactions, and
 * `createConverge` with a `manualClock` the whole of it).
 *
 * ```ts
 * await apiSpec(cartApp, { services: { prices } })
 *   .given(commit(cart, id, { type: 'CartOpened', data: { clientId: 'c1' } }))
 *   .when({ method: 'POST', url: `/carts/${id}/items`, body: { productId: 'p1', quantity: 2 } })
 *   .then({ status: 204, events: [commit(cart, id, { type: 'ProductItemAdded', data: { ... } })] });
 * ```
 */
export function apiSpec<A extends AnyAggregate, R extends AnyReactor = never>(app: ConvergeApp<A, R>, options: ApiSpecOptions<A, R> = {}) {
  const assert = options.assert ?? nodeAssert;
  const when = (given: readonly SpecCommit<NameOf<A>>[]) => (request: ApiRequest) => ({
    /** Sends the request and asserts what `expected` gives; answers the outcome. */
    then: (expected: ApiExpectation<NameOf<A>> = {}) => run(app, options, given, request, expected, assert),
  });
  return {
    given: (...given: SpecCommit<NameOf<A>>[]) => ({ when: when(given) }),
    /** A request on an empty store: `given()` with nothing. */
    when: when([]),
  };
}

async function run<A extends AnyAggregate, R extends AnyReactor>(
  app: ConvergeApp<A, R>,
  options: ApiSpecOptions<A, R>,
  given: readonly SpecCommit[],
  request: ApiRequest,
  expected: ApiExpectation,
  assert: Assertions,
): Promise<ApiOutcome> {
  const store = createMemoryEventStore();
  for (const commit of storedCommits(given)) {
    const { position: _, ...unstored } = commit;
    await store.append(unstored, await store.lastPosition(commit.aggregate, commit.id));
  }
  // The request's own effects only: the app's reactions run after commit, asynchronously, and
  // have specs of their own (processSpec, reactorSpec) and the whole runtime (createConverge).
  const converge = await createConverge({ ...app, reactors: [], processes: [] }, {
    eventStore: store,
    clock: options.clock ?? manualClock(SPEC_TIME),
    config: { ...options.config, logLevel: 'silent' },
    logger: pino({ level: 'silent' }),
    ...(options.services === undefined ? {} : { services: options.services }),
  });
  let server: FastifyInstance | undefined;
  try {
    await converge.waitFor(store.commits.length);
    server = options.build ? await options.build(converge) : await defaultServer(converge);
    const response = await server.inject({
      method: request.method,
      url: request.url,
      headers: { ...(request.body === undefined ? {} : { 'content-type': 'application/json' }), ...request.headers },
      ...(request.body === undefined ? {} : { payload: JSON.stringify(request.body) }),
    });
    // Read back through the runtime's store: personal fields are stored sealed and read opened.
    const appended = [];
    for (let position = given.length + 1; position <= store.commits.length; position++) {
      const c = await converge.store.commitAt(position);
      if (c) appended.push({ aggregate: c.aggregate, id: c.id, events: c.events.map((e) => ({ type: e.type, data: e.data })) });
    }
    const outcome: ApiOutcome = { status: response.statusCode, body: response.body === '' ? undefined : parse(response.body), headers: response.headers, events: appended };
    const what = `${request.method} ${request.url}`;
    if (expected.status !== undefined) assert.deepEqual(outcome.status, expected.status, `${what}: expected ${expected.status}, answered ${outcome.status} (${response.body.slice(0, 300)})`);
    if ('body' in expected) assert.deepEqual(outcome.body, expected.body, `${what}: the body`);
    for (const [name, value] of Object.entries(expected.headers ?? {})) assert.deepEqual(outcome.headers[name], value, `${what}: header ${name}`);
    if (expected.events !== undefined) {
      const wanted = expected.events.map((c) => ({ aggregate: c.aggregate, id: c.id, events: c.events.map((e) => ({ type: e.type, data: e.data })) }));
      assert.deepEqual(outcome.events, wanted, `${what} appends ${wanted.length} commit(s)`);
    }
    return outcome;
  } finally {
    await server?.close();
    await converge.stop();
  }
}

/** converge's command and query routes in a bare Fastify app. */
async function defaultServer(converge: Converge<AnyAggregate>): Promise<FastifyInstance> {
  const server = Fastify();
  await server.register(converge.commandRoutes);
  await server.register(converge.queryRoutes);
  return server;
}

function parse(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
