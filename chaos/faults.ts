import type { AnswerBook } from './answers.js';
import { archiveStatus } from './checks.js';
import { signal } from '../load/procs.js';
import type { FaultName, PlannedFault } from './schedule.js';
import type { World } from './world.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A fault as it happened. Times are ms since the run started. */
export interface FaultRecord {
  readonly fault: FaultName;
  readonly plannedAtS: number;
  readonly atMs: number;
  /** When the harness ended the fault (restart, SIGCONT, new cluster ready); recovery counts from here. */
  endedAtMs: number;
  readonly target: string;
  readonly pid?: number;
  /** How long until the killed process was replaced (by the primary, or by the harness for `primary`). */
  respawnMs?: number;
  commandsMs?: number;
  lagMs?: number;
  notes: string[];
  /**
   * `archiver`: whether the kill caught a round under way (an archive record had just been
   * appended), how long after the record it came, and the last record in `EVENTS` once the
   * killed process was back: the archiver must have removed what that record copied by the
   * end of the run, in the same store epoch.
   */
  archive?: { caughtRound: boolean; afterRecordMs?: number; waitedMs: number; cutShort: boolean; record: number; epoch: number };
}

/** The longest an `archiver` fault waits for the archiver to append a record before it kills anyway. */
export const ARCHIVER_WAIT_MS = 15_000;

/** What a fresh store asks of the rest of the run, around the switch. */
export interface StoreSwitch {
  /** Before the old store goes: the cluster is stopped (it began to stop at `stoppedAt`), the old nats-server still runs. */
  beforeWipe(oldEpoch: number, stoppedAt: number): Promise<void>;
  /** Once the new cluster is ready on the new store. */
  afterSwitch(): Promise<void>;
}

/**
 * Injects one planned fault and ends it as the plan says, returning what happened. Kills
 * open a window in `book`: answers lost with a killed process are counted apart.
 */
export async function inject(world: World, plan: PlannedFault, book: AnswerBook, startedAt: number, store: StoreSwitch, latestAt = Infinity): Promise<FaultRecord> {
  const now = () => Date.now() - startedAt;
  const base = { fault: plan.fault, plannedAtS: plan.atS, atMs: now(), notes: [] as string[] };
  switch (plan.fault) {
    case 'worker':
    case 'projector': {
      const role = plan.fault === 'projector' ? 'projector' : `worker ${plan.workerIndex ?? 0}`;
      const pid = world.children().get(role);
      if (!pid) return { ...base, endedAtMs: now(), target: role, notes: [`no live ${role} found among the primary's children`] };
      book.openWindow(plan.fault, plan.fault === 'projector' ? ['admin'] : ['command', 'query']);
      signal(pid, 'SIGKILL');
      const record: FaultRecord = { ...base, endedAtMs: now(), target: role, pid };
      const next = await world.respawned(role, pid, 15_000);
      if (next) record.respawnMs = now() - record.atMs;
      else record.notes.push(`${role} was not restarted within 15 s`);
      return record;
    }
    case 'primary': {
      const window = book.openWindow('primary', ['command', 'query', 'admin'], true);
      const { pid, survivors } = await world.killPrimary();
      const notes: string[] = [];
      if (survivors.length > 0) notes.push(`children outlived the primary by 5 s and were killed: ${survivors.join(', ')}`);
      // The embedded server's watchdog stops it once the primary is gone.
      if (world.embedded && !(await world.natsGone(5000))) notes.push('the embedded nats-server outlived the primary by 5 s');
      // The harness restarts converge as a supervisor (systemd, a container runtime) would. As
      // with a fresh store, the fault ends when the restarted cluster is up: recovery is
      // measured from there, and the restart's own time is the respawn column.
      await world.startCluster();
      window.to = Date.now() + 1000;
      return { ...base, endedAtMs: now(), target: 'primary', pid, respawnMs: now() - base.atMs, notes };
    }
    case 'nats': {
      const pid = await world.killNats();
      if (world.embedded) {
        // The primary starts its own server again; the fault ends when it runs.
        const next = await world.natsRespawned(pid, 15_000);
        const record: FaultRecord = { ...base, endedAtMs: now(), target: 'embedded nats-server', ...(pid ? { pid } : {}) };
        if (next) record.respawnMs = now() - base.atMs;
        else record.notes.push('the primary did not start the embedded nats-server again within 15 s');
        return record;
      }
      await sleep(plan.holdMs);
      await world.startNats();
      return { ...base, endedAtMs: now(), target: 'nats-server', ...(pid ? { pid } : {}), respawnMs: now() - base.atMs };
    }
    case 'nats-pause':
    case 'freeze': {
      const target = plan.fault === 'freeze' ? `worker ${plan.workerIndex ?? 0}` : 'nats-server';
      const pid = plan.fault === 'freeze' ? world.children().get(target) : world.natsPid();
      if (!pid) return { ...base, endedAtMs: now(), target, notes: [`no live ${target} found`] };
      // A frozen worker holds the HTTP connections it had accepted: their requests time out with it.
      const window = plan.fault === 'freeze' ? book.openWindow('freeze', ['command', 'query'], true) : undefined;
      signal(pid, 'SIGSTOP');
      await sleep(plan.holdMs);
      signal(pid, 'SIGCONT');
      if (window) window.to = Date.now() + 1000;
      return { ...base, endedAtMs: now(), target, pid, notes: [`stopped for ${plan.holdMs} ms`] };
    }
    case 'archiver':
      return archiverFault(world, plan, book, now, latestAt);
    case 'fresh-store': {
      const window = book.openWindow('fresh-store', ['command', 'query', 'admin'], true);
      const stoppedAt = Date.now();
      await world.cluster.stop();
      await world.openStoreForCheck();
      await store.beforeWipe(world.epoch, stoppedAt);
      await world.retireStore();
      world.epoch++;
      await world.startNats();
      await world.startCluster();
      window.to = Date.now() + 1000;
      await store.afterSwitch();
      return { ...base, endedAtMs: now(), target: `store ${world.epoch - 1} → ${world.epoch}`, respawnMs: now() - base.atMs };
    }
  }
}

/**
 * Kills the archiver's process (the projector, which holds the lease `x.archiver`) or
 * nats-server the moment the archiver is seen mid-round: an archive record has just been
 * appended, so its copied commits are still in `EVENTS` (or, `afterRecordMs` later, being
 * removed). Waits up to `ARCHIVER_WAIT_MS` (and no later than `latestAt`) for a record; with
 * none it kills anyway and says so, with what the archiver says of itself, and the archive
 * invariant fails (the fault tested nothing) unless the run's end cut the wait short.
 */
async function archiverFault(world: World, plan: PlannedFault, book: AnswerBook, now: () => number, latestAt: number): Promise<FaultRecord> {
  const kill = plan.archiver?.kill ?? 'projector';
  const delay = plan.archiver?.afterRecordMs ?? 0;
  const epoch = world.epoch;
  const startedAt = Date.now() - now();
  const waitFrom = Date.now();
  const pid = kill === 'projector' ? world.children().get('projector') : world.natsPid();
  const target = kill === 'projector' ? 'projector (archiver)' : world.embedded ? 'embedded nats-server (archiver)' : 'nats-server (archiver)';
  if (!pid) return { fault: plan.fault, plannedAtS: plan.atS, atMs: now(), endedAtMs: now(), target, notes: [`no live ${kill} found`] };
  let seenAt: number | undefined;
  let killedAt: number | undefined;
  const strike = () => {
    killedAt = Date.now();
    if (kill === 'projector') book.openWindow('archiver', ['admin']);
    signal(pid, 'SIGKILL');
  };
  const watch = await world.watchArchiveRecords(() => {
    seenAt = Date.now();
    if (delay === 0) strike();
    else setTimeout(strike, delay);
  });
  const deadline = Math.min(waitFrom + ARCHIVER_WAIT_MS, latestAt);
  // The run's end cut the wait short: a round missed then says little of the archiver.
  const cutShort = latestAt < waitFrom + ARCHIVER_WAIT_MS;
  while (killedAt === undefined && (seenAt !== undefined || Date.now() < deadline)) await sleep(5);
  const caughtRound = seenAt !== undefined;
  // What the archiver said of itself when it had appended nothing for the whole wait.
  const stuck = caughtRound ? undefined : await archiveStatus(world.cluster.admin);
  if (killedAt === undefined) strike();
  await watch.stop();
  const notes = [
    caughtRound
      ? `killed ${killedAt! - seenAt!} ms after an archive record was appended, ${((seenAt! - waitFrom) / 1000).toFixed(1)} s into the wait`
      : `no archive record was appended within ${((killedAt! - waitFrom) / 1000).toFixed(1)} s${cutShort ? ' (all the run left before its last seconds)' : ''}: killed with no round seen under way` +
        (stuck ? ` (the archiver then: ${stuck.archiver.state}, ${stuck.archiver.due} due, the oldest for ${(stuck.archiver.lagMs / 1000).toFixed(1)} s, last round ended ${stuck.archiver.lastRoundAt ?? 'never'}${stuck.archiver.error ? `, error: ${stuck.archiver.error}` : ''})` : ''),
  ];
  const atMs = killedAt! - startedAt;
  let respawnMs: number | undefined;
  if (kill === 'projector') {
    if (await world.respawned('projector', pid, 15_000)) respawnMs = now() - atMs;
    else notes.push('projector was not restarted within 15 s');
  } else if (world.embedded) {
    if (await world.natsRespawned(pid, 15_000)) respawnMs = now() - atMs;
    else notes.push('the primary did not start the embedded nats-server again within 15 s');
  } else {
    await sleep(plan.holdMs);
    await world.startNats();
    respawnMs = now() - atMs;
  }
  const record = await world.lastArchiveRecord();
  const archive = { caughtRound, ...(caughtRound ? { afterRecordMs: killedAt! - seenAt! } : {}), waitedMs: (seenAt ?? killedAt!) - waitFrom, cutShort, record, epoch };
  return { fault: plan.fault, plannedAtS: plan.atS, atMs, endedAtMs: now(), target, pid, ...(respawnMs === undefined ? {} : { respawnMs }), notes, archive };
}
