import type { FeedHealth } from './feed.js';

// What the read side reports of itself: the projector's status as `/admin/projections`, the
// status stream, `/ready/views` and the metrics read it. Types only, so that the public API
// (`Converge.status()`) names nothing of NATS or tracing.

/** How one projection is doing, for the admin API, `/ready/views` and metrics. */
export interface ProjectionStatus {
  readonly name: string;
  readonly version: number;
  readonly generation: number;
  /**
   * `running`; `rebuilding`: a fresh generation is being built while this one serves;
   * `failing`: batches cannot be applied (the view store cannot write) and are retried;
   * `stalled`: the consumer stopped delivering while `EVENTS` has more, and is recreated;
   * `stopped`: a fold failed under the `stop` policy and waits for `resume`.
   */
  readonly state: 'running' | 'rebuilding' | 'failing' | 'stalled' | 'stopped';
  readonly position: number;
  /** Commits in `EVENTS` after `position`, against the stream's last sequence. */
  readonly lagEvents: number;
  /** Age of the oldest commit not applied yet; 0 when none waits, null when its time is not known (NATS away). */
  readonly lagMs: number | null;
  readonly parked: number;
  readonly error?: string;
  /** When a batch last applied to the views. */
  readonly lastBatchAt: string;
  readonly sinceLastBatchMs: number;
  /** The fresh generation being built, while `rebuilding`. */
  readonly rebuild?: RebuildStatus;
  /** How the last rebuild that did not swap in ended. */
  readonly lastRebuildError?: string;
}

/** The runner's view of the event store: its last sequence, from stream info. */
export interface StreamState {
  readonly reachable: boolean;
  readonly lastPosition: number;
  /** When `lastPosition` was read. */
  readonly checkedAt: string | null;
  /** Set while nats-server refuses this host's writes because its storage is full: since when, and its answer. */
  readonly refusesWrites?: { readonly since: string; readonly reason: string };
}

/** A rebuild in progress: the fresh generation's position, what it runs to, and when it should get there. */
export interface RebuildStatus {
  readonly generation: number;
  readonly position: number;
  /** The stream's last position: the rebuild swaps in once it has caught up with the live generation, at most this far. */
  readonly target: number;
  readonly startedAt: string;
  /** Commits applied per second over the last few seconds; null until it has moved. */
  readonly ratePerS: number | null;
  /** Milliseconds left to `target` at that rate; null while the rate is unknown. */
  readonly etaMs: number | null;
  readonly state: FeedHealth['state'];
  readonly error?: string;
}

/** What the projector reports about the views of its host. */
export interface ViewsStatus {
  readonly projections: readonly ProjectionStatus[];
  /** Absent on a read replica, which announces nothing. */
  readonly notifier?: { readonly position: number; readonly state: FeedHealth['state']; readonly lagEvents: number; readonly error?: string };
  readonly eventStore: StreamState;
  /** The reactors and processes, where this host's projector runs them (see docs/architecture.md, "Reactions"). */
  readonly reactions?: readonly ReactionStatus[];
  /** Who runs the reactions: this host, another one (by its lease's holder), or nobody yet. */
  readonly reactionsHolder?: string | null;
  /** The archive (docs/architecture.md, "Archive"), when the app has anything to archive. */
  readonly archive?: ArchiveStatus;
  /** When the projector took this status. */
  readonly at: string;
}

/** How much is live and how much archived, and what the archiver is doing. */
export interface ArchiveStatus {
  /** Aggregates with commits in `EVENTS` (its subjects), process instances included; null while unknown. */
  readonly liveAggregates: number | null;
  readonly archivedAggregates: number;
  readonly archivedCommits: number;
  /** The archived commits' size as JSON, in bytes. */
  readonly archiveBytes: number;
  /** The last archive record the host's index has applied. */
  readonly indexPosition: number;
  readonly archiver: {
    /** `running` here, `paused` by an operator, `idle` where another process holds the archiver's lease. */
    readonly state: 'running' | 'paused' | 'idle';
    /** Who runs it: this process, another one (by its lease's holder), or nobody yet. */
    readonly holder: string | null;
    /** Finished aggregates due for the archive at the last round (at most a batch). */
    readonly due: number;
    /** How long the oldest of them has been due. */
    readonly lagMs: number;
    /** Aggregates this process archived since it started. */
    readonly archived: number;
    readonly purgedThrough: number;
    readonly lastRoundAt: string | null;
    readonly error?: string;
  };
}

/** How a reactor or process is doing, for the admin API, the console, `converge status` and metrics. */
export interface ReactionStatus {
  readonly name: string;
  readonly kind: 'reactor' | 'process';
  /**
   * `running`; `idle`: another host holds the reactions' lease and runs it; `failing`: its
   * checkpoint cannot be saved, or it is retrying an input; `stalled`: its consumer stopped
   * delivering and is recreated; `stopped`: an input failed under the `stop` policy.
   */
  readonly state: 'running' | 'idle' | 'failing' | 'stalled' | 'stopped';
  /** Its checkpoint: everything up to here is handled. */
  readonly position: number;
  /** Commits in `EVENTS` after `position`. */
  readonly lagEvents: number;
  readonly parked: number;
  readonly error?: string;
  /** Processes only: open instances, pending timers and the next one due. */
  readonly instances?: { readonly open: number; readonly timersPending: number; readonly nextTimerDue: string | null };
}
