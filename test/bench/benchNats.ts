import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { launchNatsServer, type NatsServerProcess } from '../../src/nats/server.js';
import { EVENTS } from '../../src/store/eventStream.js';

/** A nats-server of a benchmark's own, on its own port and store directory, and a connection to it. */
export interface BenchServer {
  readonly storeDir: string;
  proc: NatsServerProcess;
  link: NatsLink;
}

/** The servers and directories a benchmark made, for it to stop and remove whatever happens. */
export interface Leftovers {
  readonly servers: Set<NatsServerProcess>;
  readonly dirs: Set<string>;
}

export function leftovers(): Leftovers {
  return { servers: new Set(), dirs: new Set() };
}

/** Kills every server still running and removes every directory. */
export async function cleanUp(left: Leftovers): Promise<void> {
  for (const proc of left.servers) await proc.kill().catch(() => undefined);
  left.servers.clear();
  for (const dir of left.dirs) rmSync(dir, { recursive: true, force: true });
  left.dirs.clear();
}

/** A temporary directory, removed by `cleanUp` unless removed before. */
export function tempDir(left: Leftovers, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  left.dirs.add(dir);
  return dir;
}

export function removeDir(left: Leftovers, dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  left.dirs.delete(dir);
}

/** Where a bench server logs: in its store directory, the previous start's log beside it as `nats.log.1`. */
const logOf = (storeDir: string) => join(storeDir, 'nats.log');

/**
 * More arguments for the bench's nats-server, from BENCH_NATS_ARGS: `--profile 18223` serves
 * Go's pprof (`curl -o cpu.pprof 'http://127.0.0.1:18223/debug/pprof/profile?seconds=9'`,
 * read with `go tool pprof -top cpu.pprof`). One server at a time: the port is fixed.
 */
const natsArgs = process.env.BENCH_NATS_ARGS?.split(' ').filter(Boolean) ?? [];

async function launch(left: Leftovers, storeDir: string, port = 0): Promise<{ proc: NatsServerProcess; link: NatsLink }> {
  const proc = await launchNatsServer({ port, storeDir, readyTimeoutMs: 600_000, logFile: logOf(storeDir), extraArgs: natsArgs });
  left.servers.add(proc);
  const link = await connectNats(proc.url, { name: 'bench', timeoutMs: 30_000, log: pino({ level: 'silent' }) });
  return { proc, link };
}

/** A fresh nats-server on a free port with an empty store in a temporary directory. */
export async function freshServer(left: Leftovers, name: string): Promise<BenchServer> {
  const storeDir = tempDir(left, name);
  return { storeDir, ...(await launch(left, storeDir)) };
}

/**
 * Stops nats-server with SIGTERM and waits up to two minutes for it to write its state and
 * exit (the launcher's own `stop` kills it after 5 s), then kills it. Answers how long it took.
 */
export async function stopServer(left: Leftovers, server: BenchServer): Promise<{ ms: number; exit: string }> {
  await server.link.close().catch(() => undefined);
  if (!left.servers.has(server.proc)) return { ms: 0, exit: 'stopped already' };
  const t0 = performance.now();
  try {
    process.kill(server.proc.pid, 'SIGTERM');
  } catch {
    // Gone already: `exited` has resolved.
  }
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([server.proc.exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 120_000)))]);
  clearTimeout(timer);
  if (!exit) await server.proc.kill();
  left.servers.delete(server.proc);
  return { ms: performance.now() - t0, exit: exit ? (exit.signal ?? `exit code ${exit.code}`) : 'killed after 120 s' };
}

/** Stops the server and starts it again on the same store and port; `startMs` runs from the spawn until `EVENTS` answers its info. */
export async function restartServer(left: Leftovers, server: BenchServer): Promise<{ stopMs: number; exit: string; startMs: number }> {
  const stopped = await stopServer(left, server);
  const t0 = performance.now();
  const { proc, link } = await launch(left, server.storeDir, server.proc.port);
  for (;;) {
    try {
      await link.jsm.streams.info(EVENTS);
      break;
    } catch (err) {
      if (performance.now() - t0 > 600_000) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const startMs = performance.now() - t0;
  server.proc = proc;
  server.link = link;
  return { stopMs: stopped.ms, exit: stopped.exit, startMs };
}

/** Resident and peak resident memory of a process, in MB (`VmRSS`, `VmHWM`). */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakMb: Math.round(kb('VmHWM') / 1024) };
}

/** A stream's subjects, messages, removed messages between its first and last, and size. */
export interface StreamCounts {
  readonly subjects: number;
  readonly messages: number;
  readonly deleted: number;
  readonly mb: number;
}

/** What a stream holds; zeros when it does not exist. */
export async function streamCounts(link: NatsLink, stream: string): Promise<StreamCounts> {
  const info = await link.jsm.streams.info(stream).catch(() => undefined);
  if (!info) return { subjects: 0, messages: 0, deleted: 0, mb: 0 };
  const { num_subjects: subjects = 0, messages, num_deleted: deleted = 0, bytes } = info.state;
  return { subjects, messages, deleted, mb: Math.round(bytes / 1e6) };
}

/** How many times the server closed a client as a slow consumer (one that fell 64 MB behind) since it last started, from its log. */
export function slowConsumers(server: BenchServer): number {
  const log = logOf(server.storeDir);
  return existsSync(log) ? (readFileSync(log, 'utf8').match(/Slow Consumer Detected/g)?.length ?? 0) : 0;
}
