import { readdirSync, readFileSync } from 'node:fs';

/** A process seen in /proc. */
export interface ProcInfo {
  readonly pid: number;
  readonly cmdline: string;
  readonly env: Readonly<Record<string, string>>;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** One process, or undefined when it is gone (or a zombie, which has no cmdline). */
export function procInfo(pid: number): ProcInfo | undefined {
  const cmdline = read(`/proc/${pid}/cmdline`);
  if (!cmdline) return undefined;
  const env: Record<string, string> = {};
  for (const entry of (read(`/proc/${pid}/environ`) ?? '').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { pid, cmdline: cmdline.split('\0').join(' ').trim(), env };
}

/** The direct children of `pid`, from every thread's `children` list. */
export function childrenOf(pid: number): number[] {
  const out = new Set<number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    for (const c of (read(`/proc/${pid}/task/${task}/children`) ?? '').split(' ').filter(Boolean)) out.add(Number(c));
  }
  return [...out];
}

/** The cluster's children by role: `worker <index>` or `projector`. */
export function clusterChildren(primaryPid: number): Map<string, number> {
  const roles = new Map<string, number>();
  for (const pid of childrenOf(primaryPid)) {
    const info = procInfo(pid);
    if (!info) continue;
    const role = info.env['CONVERGE_CLUSTER_PROCESS'];
    if (role === 'projector') roles.set('projector', pid);
    else if (role === 'worker') roles.set(`worker ${info.env['CONVERGE_CLUSTER_WORKER_INDEX'] ?? '?'}`, pid);
  }
  return roles;
}

/** Whether `pid` is alive and not a zombie. */
export function alive(pid: number): boolean {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return false;
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/**
 * Every live process that belongs to the run under `runDir`: a nats-server whose command
 * line names a store there, or a converge process whose data dir is there.
 */
export function processesUnder(runDir: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || !alive(pid)) continue;
    const info = procInfo(pid);
    if (!info) continue;
    if (info.cmdline.includes(runDir) || (info.env['CONVERGE_DATA_DIR'] ?? '').startsWith(runDir)) out.push(info);
  }
  return out;
}

/** Sends `signal` to `pid`, ignoring a process that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** CPU a process has used so far, user and system, in ms; undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // After the command name in parentheses: state is field 3; utime and stime are 14 and 15, in clock ticks.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** Linux's USER_HZ: the clock ticks /proc counts CPU time in. */
const CLOCK_TICKS = 100;

/** The processes of a target by role (`worker`, `projector`, `primary`, `nats-server`), for measuring their CPU. */
export type RolePids = ReadonlyMap<string, readonly number[]>;

/**
 * The CPU each role used between `sample()` and the returned `end()`, in ms. A process
 * that exits meanwhile (a restarted worker) counts up to its last sample only.
 */
export function cpuOf(roles: () => RolePids): { end(): Map<string, number> } {
  const first = new Map<number, number>();
  for (const pids of roles().values()) for (const pid of pids) first.set(pid, cpuMs(pid) ?? 0);
  return {
    end() {
      const used = new Map<string, number>();
      for (const [role, pids] of roles()) {
        let ms = 0;
        for (const pid of pids) ms += Math.max(0, (cpuMs(pid) ?? 0) - (first.get(pid) ?? 0));
        used.set(role, ms);
      }
      return used;
    },
  };
}

/** A converge cluster's processes by role: its primary, workers and projector. */
export function clusterRoles(primaryPid: number): Map<string, number[]> {
  const roles = new Map<string, number[]>([['primary', [primaryPid]]]);
  for (const [role, pid] of clusterChildren(primaryPid)) {
    const kind = role.startsWith('worker') ? 'worker' : role;
    roles.set(kind, [...(roles.get(kind) ?? []), pid]);
  }
  return roles;
}
