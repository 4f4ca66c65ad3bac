import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ConvergeError } from '../core/errors.js';

/** Seconds; a command on a warm actor takes about a millisecond, a forwarded one a few. */
const COMMAND_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * One process's metrics (see docs/architecture.md, "Metrics and traces"): a registry of
 * its own with prom-client's default process metrics, and the command path's counters.
 * The cluster primary sums the registries of its workers and projector.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Times a command from its dispatch on the receiving worker to its answer. */
  timeCommand<T>(aggregate: string, command: string, run: () => Promise<T>, outcome: (result: T) => string): Promise<T>;
  /** An append refused because another writer got there first (wrong last subject sequence). */
  conflict(aggregate: string): void;
  /** A command decided again after a conflict. */
  retry(aggregate: string): void;
  /** A command sent to the worker that owns its partition. */
  forwarded(aggregate: string): void;
  natsReconnected(): void;
  /** A process's durable timer fired, `latenessMs` after it fell due. */
  timerFired(process: string, latenessMs: number): void;
}

/** Creates a process's registry with the default process metrics and the command metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'converge_command_duration_seconds',
    help: 'Commands from dispatch on the receiving worker to their answer, by aggregate, command type and outcome (accepted, rejected, conflict, or an error code).',
    labelNames: ['aggregate', 'command', 'outcome'],
    buckets: COMMAND_BUCKETS,
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'converge_command_conflicts_total',
    help: 'Appends refused because another writer had moved the aggregate on (wrong last subject sequence).',
    labelNames: ['aggregate'],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'converge_command_retries_total',
    help: 'Commands decided again after a conflict, up to actors.conflictRetries each.',
    labelNames: ['aggregate'],
    registers: [registry],
  });
  const forwarded = new Counter({
    name: 'converge_commands_forwarded_total',
    help: 'Commands a worker sent to the owner of their partition over NATS.',
    labelNames: ['aggregate'],
    registers: [registry],
  });
  const reconnects = new Counter({ name: 'converge_nats_reconnects_total', help: 'Reconnections to NATS.', registers: [registry] });
  const lateness = new Histogram({
    name: 'converge_timer_lateness_seconds',
    help: 'How long after their due time durable timers fired, by process.',
    labelNames: ['process'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  // Label lookups hash their values on every call; the command path keeps the children it has made.
  const children = new Map<string, Histogram.Internal<'aggregate' | 'command' | 'outcome'>>();
  const child = (aggregate: string, command: string, outcome: string) => {
    const key = `${aggregate}\u0000${command}\u0000${outcome}`;
    let c = children.get(key);
    if (!c) children.set(key, (c = duration.labels(aggregate, command, outcome)));
    return c;
  };
  return {
    registry,
    async timeCommand(aggregate, command, run, outcome) {
      const start = performance.now();
      let result: string;
      try {
        const value = await run();
        result = outcome(value);
        return value;
      } catch (err) {
        result = err instanceof ConvergeError ? err.code : 'internal_error';
        throw err;
      } finally {
        child(aggregate, command, result!).observe((performance.now() - start) / 1000);
      }
    },
    conflict: (aggregate) => conflicts.inc({ aggregate }),
    retry: (aggregate) => retries.inc({ aggregate }),
    forwarded: (aggregate) => forwarded.inc({ aggregate }),
    natsReconnected: () => reconnects.inc(),
    timerFired: (process, latenessMs) => lateness.observe({ process }, latenessMs / 1000),
  };
}

/** What a worker's actor host tells its gauges when they are read. */
export interface ActorFacts {
  /** Commands queued or running, summed over its actors. */
  readonly inFlight: number;
  /** Resident aggregates, their actors running or at rest. */
  readonly size: number;
  /** Resident aggregates whose actor runs. */
  readonly awake: number;
}

/** A gauge without labels whose value `read` gives at each scrape. */
function readGauge(metrics: Metrics, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [metrics.registry],
    collect() {
      this.set(read());
    },
  });
}

/** `converge_partitions_owned`: the partitions this worker owns at each scrape; summed over a host's workers, the host's. */
export function watchPartitions(metrics: Metrics, owned: () => number): void {
  readGauge(metrics, 'converge_partitions_owned', 'Partitions whose commands run on this host (by lease, or all of them with static ownership).', owned);
}

/** `converge_mailbox_depth`, `converge_resident_actors` and `converge_awake_actors`, read from the actor host at each scrape. */
export function watchActors(metrics: Metrics, host: ActorFacts): void {
  readGauge(metrics, 'converge_mailbox_depth', 'Commands queued or running in the actors mailboxes.', () => host.inFlight);
  readGauge(metrics, 'converge_resident_actors', 'Aggregates whose memory is resident, their actors running or at rest.', () => host.size);
  readGauge(metrics, 'converge_awake_actors', 'Resident aggregates whose XState actor runs; the rest are at rest (actors.restMs, actors.maxAwake).', () => host.awake);
}

/** The read side as the projector sees it, for the gauges below. */
export interface ReadSideFacts {
  readonly projections: ReadonlyArray<{
    readonly name: string;
    readonly state: string;
    readonly position: number;
    readonly lagEvents: number;
    readonly lagMs: number | null;
    readonly parked: number;
  }>;
  /** `EVENTS`'s last sequence, or undefined while NATS cannot be reached. */
  readonly lastPosition: number | undefined;
  /** Undefined on a read replica, which runs no notifier. */
  readonly notifierLagEvents: number | undefined;
}

/** A subscribing system's notices not yet acknowledged. */
export interface SubscriberPending {
  readonly name: string;
  readonly pending: number;
}

const PROJECTION_STATES = ['running', 'rebuilding', 'failing', 'stalled', 'stopped'];

/** A reactor's or process's status, as the metrics read it. */
export interface ReactionFacts {
  readonly name: string;
  readonly kind: string;
  readonly state: string;
  readonly lagEvents: number;
  readonly parked: number;
  readonly instances?: { readonly open: number; readonly timersPending: number };
}

const REACTION_STATES = ['running', 'idle', 'failing', 'stalled', 'stopped'];

/**
 * The reactions' gauges, read at scrape from their status: lag, parked inputs and state per
 * reactor and process, and each process's open instances and pending timers. Reported where
 * the reactions run; elsewhere they are `idle` with no lag.
 */
export function watchReactions(metrics: Metrics, facts: () => readonly ReactionFacts[]): void {
  const registers = [metrics.registry];
  const gauge = (name: string, help: string, value: (r: ReactionFacts) => number | undefined, label = 'reaction') =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers,
      collect() {
        this.reset();
        for (const r of facts()) {
          const v = value(r);
          if (v !== undefined) this.set({ [label]: r.name }, v);
        }
      },
    });
  gauge('converge_reaction_lag_events', 'Commits in EVENTS after a reactor\'s or process\'s checkpoint.', (r) => r.lagEvents);
  gauge('converge_reaction_parked', 'Inputs a reactor or process set aside (its policy parked them).', (r) => r.parked);
  gauge('converge_timers_pending', 'Durable timers a process has scheduled that have not fired or been cancelled.', (r) => r.instances?.timersPending, 'process');
  gauge('converge_process_instances_open', 'Process instances started and not ended.', (r) => r.instances?.open, 'process');
  new Gauge({
    name: 'converge_reaction_state',
    help: '1 for the state a reactor or process is in: running, idle (another host runs it), failing, stalled or stopped.',
    labelNames: ['reaction', 'state'],
    registers,
    collect() {
      this.reset();
      for (const r of facts()) for (const state of REACTION_STATES) this.set({ reaction: r.name, state }, r.state === state ? 1 : 0);
    },
  });
}

/**
 * The projector's gauges, read at each scrape: projections' lag (in events against the
 * stream's last sequence, and in seconds: the age of the oldest unapplied commit), their
 * position, state and parked events, the notifier's lag, and each subscriber's pending
 * notices (asked of NATS; left out while it cannot answer).
 */
export function watchReadSide(metrics: Metrics, facts: () => ReadSideFacts, subscribers: () => Promise<readonly SubscriberPending[]>): void {
  const registers = [metrics.registry];
  const perProjection = (name: string, help: string, value: (p: ReadSideFacts['projections'][number]) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['projection'],
      registers,
      collect() {
        this.reset();
        for (const p of facts().projections) {
          const v = value(p);
          if (v !== null) this.set({ projection: p.name }, v);
        }
      },
    });
  perProjection('converge_projection_lag_events', 'Commits in EVENTS after the projection\'s checkpoint.', (p) => p.lagEvents);
  perProjection('converge_projection_lag_seconds', 'Age of the oldest commit the projection has not applied yet; absent while unknown.', (p) =>
    p.lagMs === null ? null : p.lagMs / 1000,
  );
  perProjection('converge_projection_position', 'The projection\'s checkpoint (a stream position).', (p) => p.position);
  perProjection('converge_projection_parked', 'Events parked for the projection (its fold threw).', (p) => p.parked);
  new Gauge({
    name: 'converge_projection_state',
    help: '1 for the state a projection is in: running, rebuilding, failing, stalled or stopped.',
    labelNames: ['projection', 'state'],
    registers,
    collect() {
      this.reset();
      for (const p of facts().projections) for (const state of PROJECTION_STATES) this.set({ projection: p.name, state }, p.state === state ? 1 : 0);
    },
  });
  new Gauge({
    name: 'converge_events_position',
    help: 'The last sequence of EVENTS; absent while NATS cannot be reached.',
    registers,
    collect() {
      this.reset();
      const last = facts().lastPosition;
      if (last !== undefined) this.set(last);
    },
  });
  new Gauge({
    name: 'converge_notifier_lag_events',
    help: 'Commits in EVENTS the notifier has not announced yet.',
    registers,
    collect() {
      const lag = facts().notifierLagEvents;
      if (lag !== undefined) this.set(lag);
    },
  });
  new Gauge({
    name: 'converge_subscriber_pending_notices',
    help: 'Notices a subscribing system has not acknowledged: in NOTIFY (not delivered yet, or delivered and unacknowledged) and re-published for it in REPLAY.',
    labelNames: ['subscriber'],
    registers,
    async collect() {
      this.reset();
      for (const s of await subscribers().catch(() => [])) this.set({ subscriber: s.name }, s.pending);
    },
  });
}

/** What the archive gauges read (see `ArchiveStatus`). */
export interface ArchiveFacts {
  readonly liveAggregates: number | null;
  readonly archivedAggregates: number;
  readonly archivedCommits: number;
  readonly archiveBytes: number;
  readonly archiver: { readonly state: string; readonly due: number; readonly lagMs: number; readonly archived: number };
}

/**
 * The archive's gauges (docs/architecture.md, "Archive"), read from a projector's status:
 * what is live and archived, the archive's size, and the archiver's backlog, lag and work.
 * Every host's index holds the whole archive, so the cluster's sum counts it once per host.
 */
export function watchArchive(metrics: Metrics, facts: () => ArchiveFacts | undefined): void {
  const registers = [metrics.registry];
  const gauge = (name: string, help: string, value: (a: ArchiveFacts) => number | null, labels?: Record<string, string>) =>
    new Gauge({
      name,
      help,
      labelNames: labels ? Object.keys(labels) : [],
      registers,
      collect() {
        this.reset();
        const a = facts();
        const v = a && value(a);
        if (v !== undefined && v !== null) labels ? this.set(labels, v) : this.set(v);
      },
    });
  new Gauge({
    name: 'converge_aggregates',
    help: 'Aggregates live in EVENTS (its subjects) and archived.',
    labelNames: ['where'],
    registers,
    collect() {
      this.reset();
      const a = facts();
      if (!a) return;
      if (a.liveAggregates !== null) this.set({ where: 'live' }, a.liveAggregates);
      this.set({ where: 'archived' }, a.archivedAggregates);
    },
  });
  gauge('converge_archive_commits', 'Commits held by the archive.', (a) => a.archivedCommits);
  gauge('converge_archive_bytes', 'Size of the archived commits as JSON.', (a) => a.archiveBytes);
  gauge('converge_archiver_due', 'Finished aggregates due for the archive at the archiver\'s last round (at most a batch).', (a) => a.archiver.due);
  gauge('converge_archiver_lag_seconds', 'How long the oldest aggregate due for the archive has waited.', (a) => a.archiver.lagMs / 1000);
  gauge('converge_archiver_paused', '1 while an operator has paused the archiver.', (a) => (a.archiver.state === 'paused' ? 1 : 0));
  new Counter({
    name: 'converge_archived_aggregates_total',
    help: 'Aggregates this process has archived.',
    registers,
    collect() {
      const a = facts();
      if (a) {
        this.reset();
        this.inc(a.archiver.archived);
      }
    },
  });
}
