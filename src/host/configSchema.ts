import { Type, type Static, type TObject, type TSchema } from 'typebox';

// Every key of the configuration, with its default and what it means. The README's
// configuration table is generated from these descriptions (`npm run docs:config`), and a
// test checks that the two agree.

/** A setting: its schema with its default and description. */
function setting<T extends TSchema>(schema: T, value: Static<T>, description: string): T {
  return { ...schema, default: value, description } as T;
}

const port = (value: number, description: string) => setting(Type.Integer({ minimum: 0, maximum: 65535 }), value, description);
const positive = (value: number, description: string) => setting(Type.Integer({ minimum: 1 }), value, description);
const text = (value: string, description: string) => setting(Type.String(), value, description);
const section = <P extends Record<string, TSchema>>(properties: P) => Type.Object(properties, { additionalProperties: false });

/** Who may call a query route. */
export const ReadPolicySchema = Type.Union([Type.Literal('public'), Type.Literal('reader'), Type.Literal('customer')]);

/** The whole configuration; every key has a default, so an empty configuration is a complete one. */
export const ConfigSchema = section({
  dataDir: setting(Type.String({ minLength: 1 }), 'data', 'where the views, the snapshots, the embedded nats-server\'s store and its credentials live (created `0700`)'),
  logLevel: setting(
    Type.Union([
      Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'),
      Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent'),
    ]),
    'info',
    'the least level logged: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`',
  ),
  nats: section({
    url: text('', 'empty: launch an embedded `nats-server` with its store in `<dataDir>/nats`; else the server\'s URL, or the servers of one NATS cluster comma-separated (`nats://10.0.0.1:4222,nats://10.0.0.2:4222`)'),
    embeddedPort: port(0, 'port of the embedded server; 0: a free one'),
    embeddedSync: setting(
      Type.Union([Type.Literal('default'), Type.Literal('always')]),
      'default',
      '`always`: the embedded server fsyncs every commit before it acknowledges it (nats-server 2.10 and later; on 2.9 a warning says it cannot); `default`: every 2 minutes',
    ),
    embeddedAuth: setting(Type.Boolean(), true, 'the embedded server accepts only the users converge generates (`<dataDir>/nats-auth.json`); `false` runs it open'),
    requestTimeoutMs: positive(2000, 'connect timeout, and how long a forwarded command or state read waits for its owner'),
    replicas: setting(
      Type.Integer({ minimum: 1, maximum: 5 }),
      1,
      'copies of `EVENTS`, `NOTIFY`, `REPLAY` and the `converge-leases` and `converge-reactions` buckets on a NATS cluster (3 on a 3-node cluster); a stream made with another count is scaled at start. On nats-server before 2.9.21 appends to a replicated `EVENTS` are fenced by position (see "What an acknowledged command survives")',
    ),
    user: text('', 'user for a server converge does not launch'),
    password: text('', 'its password'),
    token: text('', 'or a token for that server'),
    credsFile: text('', 'or a credentials file for that server'),
    tls: section({
      caFile: text('', 'TLS to that server: the CA that signed it'),
      certFile: text('', 'a client certificate, where the server asks for one'),
      keyFile: text('', "that certificate's key"),
    }),
  }),
  http: section({
    host: setting(Type.String({ minLength: 1 }), '127.0.0.1', 'where the APIs listen; a host other than loopback needs `http.tokens` or `http.allowUnauthenticated`'),
    commandPort: port(8080, 'the command API'),
    queryPort: port(8081, 'the query API'),
    adminPort: port(8082, 'the admin API and the console'),
    bodyLimit: positive(65536, 'largest request body, in bytes'),
    keepAliveTimeoutMs: positive(5000, 'idle keep-alive connections are closed after this long'),
    tokens: setting(Type.Array(Type.String({ minLength: 8 })), [], 'bearer tokens for the command and admin APIs, also accepted by every query route; none: open'),
    readerTokens: setting(Type.Array(Type.String({ minLength: 8 })), [], "bearer tokens for the query API's `reader` and `customer` routes only (no commands, no admin)"),
    readPolicy: setting(
      Type.Record(Type.String(), ReadPolicySchema),
      {},
      'who may call a query route, by `METHOD /path` as declared: `public`, `reader` or `customer`, over what the route declares (`config: { access }`); `*` for routes that declare nothing (else `reader`); enforced once a token is set; config files only',
    ),
    customerTokenSecret: text('', 'HS256 secret that signs customer tokens (`sub` = customer id); empty: none accepted'),
    queryRateLimit: section({
      max: setting(Type.Integer({ minimum: 0 }), 0, 'requests per client IP per window on the query API, counted by each worker; 0: no limit'),
      windowMs: positive(60000, 'the rate limit\'s window'),
    }),
    allowUnauthenticated: setting(Type.Boolean(), false, 'lets a non-loopback `http.host` start with no tokens, leaving commands and admin open to the network'),
  }),
  cluster: section({
    hostId: text('', 'names this host on its NATS (empty: the hostname): its projector\'s status and read-your-writes nudges go to its own query workers only'),
    workers: setting(Type.Integer({ minimum: 0, maximum: 256 }), 0, 'worker processes; 0: one per core but one, at least one (the projector and nats-server take the remaining core)'),
    partitions: setting(Type.Integer({ minimum: 1, maximum: 4096 }), 64, 'partitions of the aggregates; fixed for the life of a deployment'),
    shutdownTimeoutMs: positive(10000, 'drain deadline'),
    workerIndex: setting(Type.Integer({ minimum: 0 }), 0, 'which worker a process is; set by the cluster primary, not by users'),
    role: setting(
      Type.Union([Type.Literal('all'), Type.Literal('read-replica')]),
      'all',
      '`all`: commands, queries and the admin API; `read-replica`: only the projector (on views of its own) and the query API, following the event store of the command hosts on `nats.url` (required)',
    ),
    ownership: setting(
      Type.Union([Type.Literal('auto'), Type.Literal('static'), Type.Literal('leases')]),
      'auto',
      'who owns each partition: `static`, worker `partition mod workers` of this host; `leases`, whichever worker of any host on the NATS holds its lease (see "Several hosts"); `auto`: `static` with the embedded server, `leases` with `nats.url`',
    ),
    leaseTtlMs: setting(Type.Integer({ minimum: 1000 }), 4000, 'how long a partition lease lives unless renewed: a dead host\'s partitions move after about this long'),
    process: setting(Type.Union([Type.Literal('worker'), Type.Literal('projector')]), 'worker', 'what a forked process runs; set by the cluster primary, not by users'),
  }),
  eventStore: section({
    duplicateWindowMs: positive(120000, 'how long an `Idempotency-Key` is remembered by JetStream'),
    publishTimeoutMs: positive(1500, 'how long an append waits for JetStream\'s ack (then `503 event_store_unavailable`)'),
    keyCacheSize: positive(10000, 'data subjects\' keys each process keeps in memory, the most recently used; sealing or opening a field of another subject first reads its key from `converge-keys`'),
  }),
  notices: section({
    maxAgeMs: setting(
      Type.Integer({ minimum: 1000 }),
      7 * 86_400_000,
      'how long `NOTIFY` and `REPLAY` keep a notice (7 days); a subscribing system away longer catches up through a changed-since import',
    ),
  }),
  archive: section({
    afterMs: setting(
      Type.Integer({ minimum: 0 }),
      7 * 86_400_000,
      'how long a finished aggregate (one whose `finished` holds) or an ended process instance stays in `EVENTS` before the archiver moves it to the archive (7 days); an aggregate\'s `archiveAfterMs` overrides it',
    ),
    intervalMs: positive(1000, 'how often the archiver looks for finished aggregates that are due'),
    batchSize: positive(500, 'aggregates the archiver moves per round, at most'),
    maxShare: setting(
      Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
      0.25,
      'the share of its time the archiver works while it has a backlog: after a round that archived anything it rests until its rounds took at most this share (1: no rest), so that commands and views keep the rest of the process and of nats-server',
    ),
  }),
  projections: section({
    batchSize: positive(500, 'projector batches: at most this many commits'),
    batchMs: positive(2, 'projector batches: at most this long'),
    stallMs: positive(5000, 'a feed behind the stream that applies nothing this long gets a new consumer'),
    maxBackoffMs: positive(10000, 'longest wait between attempts to apply a batch the view store refused'),
    statusIntervalMs: positive(1000, 'how often the projector reads the stream\'s last sequence and publishes its status'),
    flushCommits: setting(Type.Boolean(), false, 'each batch the projector commits waits for the disk; by default it does not, and views an operating-system crash left unflushed are rebuilt'),
  }),
  query: section({
    waitMs: positive(1000, 'how long `X-Min-Position` and `X-Max-Staleness` wait by default'),
    maxWaitMs: positive(10000, 'the longest `waitMs` a read may ask for'),
    maxPageSize: positive(100, 'most events a history page returns'),
    readyMaxLagMs: positive(5000, '`/ready/views` is 503 when a view\'s oldest unapplied commit is older'),
    publicMaxAgeS: setting(Type.Integer({ minimum: 0 }), 1, 'the `Cache-Control: max-age` of document reads anyone may make (0: `no-cache`)'),
  }),
  actors: section({
    snapshotEvery: positive(100, 'events between snapshots'),
    idleMs: positive(120000, 'an actor idle this long is snapshotted and stopped'),
    restMs: positive(1000, 'an actor without a command this long rests, once more than `maxAwake` run: its XState actor stops, its memory stays, and its next command starts it again from that memory'),
    maxAwake: setting(Type.Integer({ minimum: 0 }), 10000, 'actors kept running past `restMs`, the most recently used (about 4.6 KB each); 0: every actor rests after `restMs`'),
    mailboxSize: positive(1000, 'commands an aggregate holds at once, the running one included, before `429`'),
    recentCommits: positive(64, 'commits an actor remembers: a retried `Idempotency-Key` among them is answered from memory at any age, and `If-Match` merges look this far back'),
    conflictRetries: positive(20, 'times a command is decided again after losing the append race, then `409`'),
  }),
  telemetry: section({
    otlpEndpoint: setting(
      Type.String({ pattern: '^(https?://[^\\s]+)?$' }),
      '',
      'an OTLP/HTTP collector, e.g. `http://collector:4318` (`/v1/traces` is added): turns tracing on; empty: off',
    ),
    spanDir: text('', 'for tests and debugging: each process writes its finished spans as JSON lines to `<spanDir>/<pid>.jsonl`; also turns tracing on'),
    serviceName: setting(Type.String({ minLength: 1 }), 'converge', "the spans' `service.name`"),
  }),
});

/** The whole configuration. */
export type Config = Static<typeof ConfigSchema>;

/**
 * The configuration's schema with an app's own sections (`ConvergeApp.settings`) beside
 * converge's; a section may not take a name converge uses.
 */
export function schemaWith(settings: TObject | undefined): TObject {
  if (!settings) return ConfigSchema;
  const clash = Object.keys(settings.properties).filter((k) => Object.hasOwn(ConfigSchema.properties, k));
  if (clash.length > 0) throw new TypeError(`an app's settings may not use converge's own sections: ${clash.join(', ')}`);
  return Type.Object({ ...ConfigSchema.properties, ...settings.properties }, { additionalProperties: false });
}

/** One key of the configuration, with its default and meaning, as the README's table lists it. */
export interface ConfigKey {
  readonly path: readonly string[];
  readonly schema: TSchema;
  readonly default: unknown;
  readonly description: string;
}

/** Every leaf of a configuration schema, in declaration order. */
export function configKeys(schema: TSchema = ConfigSchema, path: readonly string[] = []): ConfigKey[] {
  const properties = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!properties || (schema as { default?: unknown }).default !== undefined) {
    const { default: value, description = '' } = schema as { default?: unknown; description?: string };
    return [{ path, schema, default: value, description }];
  }
  return Object.entries(properties).flatMap(([key, child]) => configKeys(child, [...path, key]));
}

/** A fresh configuration of every default, unvalidated and unfrozen. */
export function defaults(schema: TSchema = ConfigSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of configKeys(schema)) {
    let node = out;
    for (const p of key.path.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[key.path[key.path.length - 1]!] = structuredClone(key.default);
  }
  return out;
}
