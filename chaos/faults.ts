import type { AnswerBook } from './answers.js';
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
}

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
export async function inject(world: World, plan: PlannedFault, book: AnswerBook, startedAt: number, store: StoreSwitch): Promise<FaultRecord> {
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
