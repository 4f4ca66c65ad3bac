import type { Commit } from '../src/core/eventStore.js';

// What one store epoch's EVENTS says of the reference app's reactions (README, "Fault
// injection"): the orders and how they ended, every process timer and its firings, and the
// command ids that processes and reactors gave what they sent.

/** The process whose timer stands for an order not yet accepted. */
const ACCEPTANCE = 'orderAcceptance';

/** How soon a timer must fire after it falls due, or after the fault covering its due time ended. */
export const FIRE_WITHIN_MS = 5000;

type OrderStatus = 'placed' | 'accepted' | 'rejected' | 'cancelled' | 'delivered';
const STATUS_AFTER: Readonly<Record<string, OrderStatus>> = { OrderAccepted: 'accepted', OrderRejected: 'rejected', OrderCancelled: 'cancelled', OrderDelivered: 'delivered' };

/** One scheduling of a process instance's timer, and what became of it. Times: ms since the epoch, as JetStream stored the commits. */
export interface TimerRecord {
  readonly process: string;
  readonly instance: string;
  readonly name: string;
  readonly seq: number;
  readonly due: number;
  /** When each `~Fired` of this scheduling was stored. */
  readonly fired: number[];
  /** When it was cancelled, or replaced by a new scheduling under its name. */
  endedAt?: number;
}

type Data = Record<string, unknown>;

/**
 * Gathers, commit by commit as the store check reads `EVENTS`, what the reaction checks
 * need: each order's last status, each process timer's scheduling, cancellation and
 * firings (folded as converge folds an instance's stream), the commands each process commit
 * issued to an order, and where every `p.`/`r.` command id and every process input landed.
 */
export class ReactionScan {
  readonly orders = new Map<string, { status: OrderStatus; placedAt: number; storedAt: number }>();
  /** How long after each order was stored its `orderAcceptance` instance recorded its first decision (ms). */
  readonly acceptanceStartedAfter: number[] = [];
  readonly rejections = new Map<string, number>();
  reviewsRecorded = 0;
  readonly timers: TimerRecord[] = [];
  /** Pending timers by instance (`<process>/<id>`) and name. */
  private readonly pending = new Map<string, Map<string, TimerRecord>>();
  /** The process commits that issued commands to each order. */
  readonly issued = new Map<string, Array<{ process: string; position: number }>>();
  /** Commits by `<aggregate> <id> <command id>`, for the ids that must land once. */
  private readonly landed = new Map<string, number[]>();
  readonly applied = { process: 0, reactor: 0 };

  add(commit: Commit, position: number, storedAt: number): void {
    const { aggregate, id, commandId } = commit;
    const process = aggregate.startsWith('~') ? aggregate.slice(1) : undefined;
    // A process's command carries `p.…`, a reactor's `r.…`; an instance's own commit is keyed by the input it handled.
    if (process !== undefined || commandId.startsWith('p.') || commandId.startsWith('r.')) {
      const key = `${aggregate} ${id} ${commandId}`;
      this.landed.set(key, [...(this.landed.get(key) ?? []), position]);
      if (commandId.startsWith('p.')) this.applied.process++;
      if (commandId.startsWith('r.')) this.applied.reactor++;
    }
    if (process !== undefined) return this.instanceCommit(process, id, commit.events, position, storedAt);
    if (aggregate !== 'order') return;
    for (const event of commit.events) {
      const data = event.data as Data;
      if (event.type === 'OrderPlaced') this.orders.set(id, { status: 'placed', placedAt: position, storedAt });
      if (event.type === 'OrderReviewed') this.reviewsRecorded++;
      const status = STATUS_AFTER[event.type];
      const order = this.orders.get(id);
      if (status && order) order.status = status;
      if (event.type === 'OrderRejected') this.rejections.set(String(data['reason']), (this.rejections.get(String(data['reason'])) ?? 0) + 1);
    }
  }

  /** Folds one commit of a process instance's stream as `foldInstance` does, keeping every scheduling. */
  private instanceCommit(process: string, id: string, events: Commit['events'], position: number, storedAt: number): void {
    const instance = `${process}/${id}`;
    const placed = this.orders.get(id);
    if (process === ACCEPTANCE && placed && !this.pending.has(instance)) this.acceptanceStartedAfter.push(storedAt - placed.storedAt);
    const pending = this.pending.get(instance) ?? new Map<string, TimerRecord>();
    this.pending.set(instance, pending);
    for (const event of events) {
      const data = event.data as Data;
      const name = String(data['name']);
      switch (event.type) {
        case '~Scheduled': {
          const replaced = pending.get(name);
          if (replaced) replaced.endedAt = storedAt;
          const timer: TimerRecord = { process, instance: id, name, seq: Number(data['seq']), due: Date.parse(String(data['due'])), fired: [] };
          this.timers.push(timer);
          pending.set(name, timer);
          break;
        }
        case '~Cancelled': {
          const cancelled = pending.get(name);
          if (cancelled) cancelled.endedAt = storedAt;
          pending.delete(name);
          break;
        }
        case '~Fired': {
          const seq = Number(data['seq']);
          const current = pending.get(name);
          // A second firing of one scheduling finds it no longer pending.
          const timer = current?.seq === seq ? current : this.timers.find((t) => t.process === process && t.instance === id && t.name === name && t.seq === seq);
          if (timer) timer.fired.push(storedAt);
          else this.timers.push({ process, instance: id, name, seq, due: NaN, fired: [storedAt] });
          pending.delete(name);
          break;
        }
        case '~Issued':
          for (const command of (data['commands'] as Array<{ aggregate: string; id: string }> | undefined) ?? []) {
            if (command.aggregate === 'order') this.issued.set(command.id, [...(this.issued.get(command.id) ?? []), { process, position }]);
          }
          break;
      }
    }
  }

  /** Whether an instance has a timer pending at the end of what was read. */
  hasPending(process: string, id: string): boolean {
    return (this.pending.get(`${process}/${id}`)?.size ?? 0) > 0;
  }

  /** Command ids (or process inputs) that landed more than once in one aggregate instance. */
  duplicated(): string[] {
    return [...this.landed].filter(([, at]) => at.length > 1).map(([key, at]) => `${key} at ${at.join(', ')}`);
  }
}

/** A fault as the timer check sees it: from when to when (ms since the epoch). */
export interface FaultSpan {
  readonly fault: string;
  readonly from: number;
  readonly to: number;
}

/** Where the epoch's reactions stood when it was read: their checkpoints, and how far they were waited for. */
export interface ReactionProgress {
  readonly checkpoints: Readonly<Record<string, number>>;
  /** Inputs set aside by the reactions' error policy (`<reaction> <type> at <position>`). */
  readonly parked: readonly string[];
  /**
   * The position every reaction was waited for before the read (the live store at the end).
   * Work still owed past a checkpoint excuses an order only beyond it; in a store retired by
   * `fresh-store` (no settling), the owed work went with the store.
   */
  readonly settledTo?: number;
}

/** Every order placed in the epoch, and how it ended. */
export function judgeOrders(scan: ReactionScan, progress: ReactionProgress) {
  const count: Record<OrderStatus, number> = { placed: 0, accepted: 0, rejected: 0, cancelled: 0, delivered: 0 };
  const owes = (process: string, position: number) => position > (progress.checkpoints[process] ?? 0) && position > (progress.settledTo ?? 0);
  let timerPending = 0;
  let owed = 0;
  const stuck: string[] = [];
  for (const [id, order] of scan.orders) {
    count[order.status]++;
    if (order.status !== 'placed') continue;
    if (scan.hasPending(ACCEPTANCE, id)) timerPending++;
    else if (owes(ACCEPTANCE, order.placedAt) || (scan.issued.get(id) ?? []).some((i) => owes(i.process, i.position))) owed++;
    else {
      const issued = (scan.issued.get(id) ?? []).map((i) => `${i.process} issued to it at ${i.position}`).join(', ');
      stuck.push(`${id} placed at ${order.placedAt}, no timer pending${issued ? `, ${issued}` : ''} (checkpoints ${JSON.stringify(progress.checkpoints)})`);
    }
  }
  // Not judged: how far behind the orders the process ran (a timer counts from its instance's start).
  const after = [...scan.acceptanceStartedAfter].sort((a, b) => a - b);
  const acceptanceStartedAfterMs = { median: after[Math.floor(after.length / 2)] ?? null, max: after.at(-1) ?? null };
  return { orders: scan.orders.size, ...count, timerPending, owed, stuck, rejections: Object.fromEntries(scan.rejections), reviewsRecorded: scan.reviewsRecorded, parked: progress.parked, acceptanceStartedAfterMs };
}

/**
 * Every timer that fell due fired once, and within `FIRE_WITHIN_MS` of its due time or of
 * the end of the fault that covered it; judged up to `end`, the last moment the epoch's
 * reactions could run (its final read, or the stop before its store was retired).
 */
export function judgeTimers(scan: ReactionScan, faults: readonly FaultSpan[], end: number) {
  let cancelled = 0;
  let pendingAtEnd = 0;
  let fired = 0;
  let duringFaults = 0;
  const bad: string[] = [];
  let worst: { lateMs: number; timer: string } | undefined;
  for (const t of scan.timers) {
    const name = `${t.process} ${t.instance} ${t.name}#${t.seq}`;
    if (!Number.isFinite(t.due)) {
      bad.push(`${name} fired with no scheduling of it in the stream`);
      continue;
    }
    const cover = faults.find((f) => f.from <= t.due && t.due <= f.to);
    const base = Math.max(t.due, cover?.to ?? 0);
    const deadline = base + FIRE_WITHIN_MS;
    const where = cover ? `, due during ${cover.fault} which ended ${((cover.to - t.due) / 1000).toFixed(1)} s later` : '';
    if (t.fired.length > 1) bad.push(`${name} fired ${t.fired.length} times`);
    if (t.fired.length > 0) {
      fired++;
      if (cover) duringFaults++;
      const lateMs = Math.max(0, t.fired[0]! - base);
      if (!worst || lateMs > worst.lateMs) worst = { lateMs, timer: `${name}${where}` };
      if (t.fired[0]! < t.due - 100) bad.push(`${name} fired ${t.due - t.fired[0]!} ms before it was due`);
      else if (lateMs > FIRE_WITHIN_MS) bad.push(`${name} fired ${(lateMs / 1000).toFixed(2)} s late${where}`);
    } else if (t.endedAt !== undefined && t.endedAt <= deadline) {
      cancelled++;
    } else if (t.endedAt !== undefined) {
      bad.push(`${name} was not fired by ${(FIRE_WITHIN_MS / 1000).toFixed(0)} s after it was due${where}, and was cancelled ${((t.endedAt - base) / 1000).toFixed(1)} s after`);
    } else if (deadline <= end) {
      bad.push(`${name} was due ${((end - t.due) / 1000).toFixed(1)} s before the end${where} and never fired`);
    } else {
      pendingAtEnd++;
    }
  }
  return { scheduled: scan.timers.length, fired, duringFaults, cancelled, pendingAtEnd, bad, worst };
}

/** What one epoch's reactions came to: its orders, its timers, and the command ids of what they sent. */
export function judgeReactions(scan: ReactionScan, progress: ReactionProgress, faults: readonly FaultSpan[], end: number) {
  return { orders: judgeOrders(scan, progress), timers: judgeTimers(scan, faults, end), commands: { ...scan.applied, duplicated: scan.duplicated() } };
}

/** One epoch's reactions as judged. */
export type ReactionVerdict = ReturnType<typeof judgeReactions> & { readonly epoch: number };
