import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * Whether this system has a Linux /proc. Without it (macOS) nothing here can tell a
 * nats-server on a given store from any other process, so the checks that need it are off.
 */
export const hasProcfs = existsSync('/proc/self/stat');

function read(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    // The process is gone, or exited between the listing and the read.
    return undefined;
  }
}

/**
 * When a running process started (clock ticks since boot, from `/proc/<pid>/stat`), or
 * undefined when it is gone. A zombie counts as gone: it holds no files, and its parent
 * may take a while to reap it. Comparing start times tells a process from a later one
 * that was given the same pid.
 */
export function processStartTime(pid: number): string | undefined {
  if (!hasProcfs) return undefined;
  const stat = read(pid, 'stat');
  if (!stat) return undefined;
  // The command name sits in parentheses and may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** A running process's arguments; empty when it is gone or a zombie. */
export function commandLine(pid: number): string[] {
  if (processStartTime(pid) === undefined) return [];
  return (read(pid, 'cmdline') ?? '').split('\0').filter(Boolean);
}

/** The value after `flag` in a command line (`-p 4222`), if there is one. */
export function flagValue(args: readonly string[], ...flags: string[]): string | undefined {
  const i = args.findIndex((a) => flags.includes(a));
  return i >= 0 ? args[i + 1] : undefined;
}

/** Whether `args` are those of a nats-server whose JetStream store is `storeDir`. */
export function isNatsServerOn(args: readonly string[], storeDir: string): boolean {
  return basename(args[0] ?? '') === 'nats-server' && flagValue(args, '-sd', '--store_dir') === storeDir;
}

/** The running nats-server processes whose store is `storeDir`, with their arguments. */
export function natsServersOn(storeDir: string): { pid: number; args: string[] }[] {
  const found: { pid: number; args: string[] }[] = [];
  if (!hasProcfs) return found;
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const args = commandLine(Number(name));
    if (isNatsServerOn(args, storeDir)) found.push({ pid: Number(name), args });
  }
  return found;
}
