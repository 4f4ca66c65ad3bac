import { availableParallelism, hostname } from 'node:os';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const PositiveInt = Type.Integer({ minimum: 1 });

/** The whole configuration; every key has a default in `config/default.json`. */
export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1 }),
    logLevel: Type.Union([
      Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'),
      Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent'),
    ]),
    nats: Type.Object(
      {
        /** Empty: launch an embedded `nats-server -js` with its store under `dataDir`. */
        url: Type.String(),
        embeddedPort: Port,
        /**
         * The embedded server's fsync: `default` is nats-server's (every 2 minutes);
         * `always` fsyncs each commit before the ack, on nats-server 2.10 and later.
         */
        embeddedSync: Type.Union([Type.Literal('default'), Type.Literal('always')]),
        /**
         * The embedded server accepts only clients with the credentials converge generates at
         * its first start (kept `0600` in `<dataDir>/nats-auth.json`); `false` runs it open.
         */
        embeddedAuth: Type.Boolean(),
        requestTimeoutMs: PositiveInt,
        /**
         * Copies of `EVENTS`, `NOTIFY` and `REPLAY` on a NATS cluster (JetStream's
         * `num_replicas`): 1 on a single server, 3 on a 3-node cluster. A stream made with
         * another count is scaled to this one at start.
         */
        replicas: Type.Integer({ minimum: 1, maximum: 5 }),
        /** Credentials for a server converge does not launch: a user and password, a token, or a creds file. */
        user: Type.String(),
        password: Type.String(),
        token: Type.String(),
        credsFile: Type.String(),
        /** TLS to that server: the CA that signed it, and a client certificate and key where it asks for one. */
        tls: Type.Object(
          { caFile: Type.String(), certFile: Type.String(), keyFile: Type.String() },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    http: Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        commandPort: Port,
        queryPort: Port,
        /** The projector's admin API (projections, parked events, rebuilds). */
        adminPort: Port,
        bodyLimit: PositiveInt,
        keepAliveTimeoutMs: PositiveInt,
        /** Bearer tokens accepted by the command and admin APIs, and by every query route; none configured: open. */
        tokens: Type.Array(Type.String({ minLength: 8 })),
        /** Bearer tokens accepted by the query routes that need a reader (see `readPolicy`), but not by commands or admin. */
        readerTokens: Type.Array(Type.String({ minLength: 8 })),
        /**
         * Who may call each query route, by `METHOD /path` as the route is declared
         * (`GET /customers/:id/orders`); `*` is every route not listed. `public`: anyone;
         * `reader`: a reader, command or admin token; `customer`: those, or a customer token
         * whose subject is the route's `:id`. Enforced once any token is configured.
         */
        readPolicy: Type.Record(Type.String(), Type.Union([Type.Literal('public'), Type.Literal('reader'), Type.Literal('customer')])),
        /** The HS256 secret that signs customer tokens (JWTs with `sub` = the customer id); empty: none accepted. */
        customerTokenSecret: Type.String(),
        /** Requests per client IP and window on the query API; `max` 0: no limit. */
        queryRateLimit: Type.Object({ max: Type.Integer({ minimum: 0 }), windowMs: PositiveInt }, { additionalProperties: false }),
        /** Lets a non-loopback `host` start with no `tokens`, leaving the command and admin APIs open on purpose. */
        allowUnauthenticated: Type.Boolean(),
      },
      { additionalProperties: false },
    ),
    cluster: Type.Object(
      {
        /** Names this host among several on one NATS; empty: the machine's hostname. */
        hostId: Type.String(),
        /** Worker processes; 0 means one per available core but one, at least one. */
        workers: Type.Integer({ minimum: 0, maximum: 256 }),
        partitions: Type.Integer({ minimum: 1, maximum: 4096 }),
        shutdownTimeoutMs: PositiveInt,
        /** Which worker this process is; set by the cluster primary, not by users. */
        workerIndex: Type.Integer({ minimum: 0 }),
        /**
         * What this host does: `all` serves commands, queries and the admin API; a
         * `read-replica` runs only the projector, on views of its own, and the query API,
         * following the event store of command hosts on the same NATS (`nats.url`).
         */
        role: Type.Union([Type.Literal('all'), Type.Literal('read-replica')]),
        /**
         * Who owns each partition. `static`: worker `partition mod workers` of this host,
         * for a host alone on its NATS. `leases`: whichever worker of any host on the NATS
         * holds its lease in the `converge-leases` KV bucket (docs/architecture.md,
         * "Partition leases"). `auto`: `static` with the embedded nats-server, `leases` with
         * `nats.url`, where other hosts may share the NATS.
         */
        ownership: Type.Union([Type.Literal('auto'), Type.Literal('static'), Type.Literal('leases')]),
        /** How long a partition lease lives unless renewed: a dead worker's partitions move after about this long. */
        leaseTtlMs: Type.Integer({ minimum: 1000 }),
        /** What a forked process runs; set by the cluster primary, not by users. */
        process: Type.Union([Type.Literal('worker'), Type.Literal('projector')]),
      },
      { additionalProperties: false },
    ),
    eventStore: Type.Object(
      {
        duplicateWindowMs: PositiveInt,
        publishTimeoutMs: PositiveInt,
      },
      { additionalProperties: false },
    ),
    projections: Type.Object(
      {
        batchSize: PositiveInt,
        batchMs: PositiveInt,
        /** A feed behind the stream that applied nothing for this long is presumed stuck and its consumer recreated. */
        stallMs: PositiveInt,
        /** Longest wait between attempts to apply a batch the view store refused. */
        maxBackoffMs: PositiveInt,
        /** How often the projector reads the stream's last sequence and publishes its status. */
        statusIntervalMs: PositiveInt,
      },
      { additionalProperties: false },
    ),
    query: Type.Object(
      {
        /** How long `X-Min-Position` waits by default, and at most. */
        waitMs: PositiveInt,
        maxWaitMs: PositiveInt,
        maxPageSize: PositiveInt,
        /** `GET /ready/views` answers 503 when any view's oldest unapplied commit is older than this. */
        readyMaxLagMs: PositiveInt,
      },
      { additionalProperties: false },
    ),
    actors: Type.Object(
      {
        snapshotEvery: PositiveInt,
        idleMs: PositiveInt,
        mailboxSize: PositiveInt,
        /** Recent commits an actor remembers, for idempotent replies and If-Match merges. */
        recentCommits: PositiveInt,
        conflictRetries: PositiveInt,
      },
      { additionalProperties: false },
    ),
    telemetry: Type.Object(
      {
        /**
         * The OTLP/HTTP collector traces are sent to (`http://collector:4318`; `/v1/traces` is
         * added unless given); empty: no OTLP export. Tracing is on when this or `spanDir` is set.
         */
        otlpEndpoint: Type.String({ pattern: '^(https?://[^\\s]+)?$' }),
        /** For tests and debugging: each process writes its finished spans as JSON lines to `<spanDir>/<pid>.jsonl`; empty: none. */
        spanDir: Type.String(),
        /** `service.name` of the spans. */
        serviceName: Type.String({ minLength: 1 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** A configuration problem found at start-up; its message names the key. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
}

/**
 * Validates a merged configuration against the schema, refuses an open network listener,
 * resolves `workers: 0`, and freezes the result. The error names the first key at fault.
 */
export function validateConfig(merged: Record<string, unknown>): Config {
  const errors = [...Value.Errors(ConfigSchema, merged)];
  const first = errors[0];
  if (first) {
    const key = first.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    if (first.schemaPath.endsWith('additionalProperties')) throw new ConfigError(`config key "${key}" is not a known key`);
    throw new ConfigError(`config key "${key}" ${first.message} (got ${JSON.stringify(getPath(merged, key.split('.')))})`);
  }
  const config = merged as Config;
  refuseOpenNetworkListener(config.http);
  if (config.cluster.workers === 0) config.cluster.workers = defaultWorkers();
  if (config.cluster.hostId === '') config.cluster.hostId = hostname();
  if (config.cluster.ownership === 'auto') config.cluster.ownership = config.nats.url === '' ? 'static' : 'leases';
  if (config.cluster.role === 'read-replica' && config.nats.url === '') {
    throw new ConfigError('config key "cluster.role" read-replica needs nats.url: a read replica follows the event store of command hosts, it has none of its own');
  }
  return deepFreeze(config);
}

/**
 * `cluster.workers: 0`: one worker per core but one, at least one. The projector and
 * nats-server take a core of their own; with a worker per core, workers forward half
 * their commands to each other over NATS and gain nothing (see BENCHMARKS.md).
 */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** True for hosts only this machine can reach: 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

// Commands and the admin API change data; open to the network, anyone who can reach the
// port could issue them. That takes a deliberate setting, not a forgotten token list.
function refuseOpenNetworkListener(http: Config['http']): void {
  if (http.tokens.length > 0 || http.allowUnauthenticated || isLoopbackHost(http.host)) return;
  throw new ConfigError(
    `http.host is ${http.host} (reachable from the network) but http.tokens is empty, so the command and admin APIs would be open to anyone: ` +
      `set ${envName(['http', 'tokens'])}, or ${envName(['http', 'allowUnauthenticated'])}=true to run them open on purpose`,
  );
}

/** The environment variable that sets a key: `["http","commandPort"]` → `CONVERGE_HTTP_COMMAND_PORT`. */
export function envName(path: readonly string[]): string {
  return 'CONVERGE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getPath(target: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), target);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
