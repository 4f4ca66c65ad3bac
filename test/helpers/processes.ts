import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** One running process as /proc shows it: its pid and its arguments. */
export interface ProcessInfo {
  readonly pid: number;
  readonly args: readonly string[];
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    // Gone between the directory listing and the read, or not ours to read.
    return undefined;
  }
}

/** Every process on this machine except this one (Linux /proc). */
export function processes(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const cmdline = readProc(pid, 'cmdline');
    if (cmdline) out.push({ pid, args: cmdline.split('\0').filter(Boolean) });
  }
  return out;
}

/** Whether a nats-server's arguments name `storeDir` as its JetStream store. */
function servesStore(args: readonly string[], storeDir: string): boolean {
  if (basename(args[0] ?? '') !== 'nats-server') return false;
  return args.some(
    (arg, i) =>
      ((arg === '-sd' || arg === '--store_dir' || arg === '-store_dir') && args[i + 1] === storeDir) ||
      arg === `-sd=${storeDir}` ||
      arg === `--store_dir=${storeDir}`,
  );
}

/**
 * The pids of the nats-server processes whose command line names `storeDir` as their
 * store: more than one means two JetStream servers share one file store.
 */
export function natsServerPids(storeDir: string): number[] {
  return processes()
    .filter((p) => servesStore(p.args, storeDir))
    .map((p) => p.pid);
}

/**
 * Processes that mention `dir` in their arguments or environment: a converge started with
 * `CONVERGE_DATA_DIR=dir` (its primary, workers and projector inherit it), its watchdog and
 * its nats-server. After a clean stop there should be none.
 */
export function processesUsing(dir: string): ProcessInfo[] {
  return processes().filter((p) => p.args.some((a) => a.includes(dir)) || envOf(p.pid).some((kv) => kv.includes(dir)));
}

/** The environment a process started with, as `NAME=value` entries; empty when it is gone or not ours to read. */
export function envOf(pid: number): string[] {
  return readProc(pid, 'environ')?.split('\0').filter(Boolean) ?? [];
}

/** Waits until `check` holds, polling every 100 ms; false when `ms` ran out first. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
