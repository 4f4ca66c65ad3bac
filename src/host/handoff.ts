import type { Worker } from 'node:cluster';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * The primary holds the workers' listening sockets (docs/architecture.md, "Running"). It
 * accepts each connection and hands it to a worker that serves that port, in turn. While
 * none does (the only worker crashed and its replacement is starting), it holds the
 * connections and hands them over once one serves again. So a worker's crash costs the
 * requests it had in flight and its open connections, and no new connection is refused.
 * Node's own cluster scheduling closes a port's listening socket when its last worker
 * exits, and refuses connections until the next one listens.
 */

/** The ports the primary listens on for its workers. */
export type PortKind = 'command' | 'query';

/** What a worker and the primary say to each other about connections. */
type HandoffMessage =
  | { readonly converge: 'serving'; readonly kind: PortKind }
  | { readonly converge: 'draining' }
  | { readonly converge: 'connection'; readonly kind: PortKind; readonly id: number }
  | { readonly converge: 'took'; readonly id: number };

/** Connections the primary holds at most while no worker serves a port; more are closed. */
const MAX_HELD = 4096;
/** A held connection no worker took in this long is closed: its client has likely given up. */
const HOLD_MS = 30_000;

export interface Listeners {
  /** The port each kind listens on (the one the system chose for port 0). */
  readonly ports: Readonly<Partial<Record<PortKind, number>>>;
  /** Hands connections to `worker` once it says it serves a port, and stops at its exit or drain. */
  attach(worker: Worker): void;
  /** Stops listening and closes the connections held. */
  close(): Promise<void>;
}

interface Held {
  readonly socket: Socket;
  readonly since: number;
}

/** Listens on `ports` for the workers (see above); rejects when a port cannot be listened on. */
export async function listenForWorkers(host: string, ports: Partial<Record<PortKind, number>>, log: Logger): Promise<Listeners> {
  const servers = new Map<PortKind, Server>();
  const serving = new Map<PortKind, Worker[]>();
  const next = new Map<PortKind, number>();
  const held = new Map<PortKind, Held[]>();
  const bound: Partial<Record<PortKind, number>> = {};
  /** Connections sent to a worker that has not said it took them yet. */
  const pending = new Map<number, { socket: Socket; kind: PortKind; worker: Worker; since: number }>();
  let sent = 0;
  let warnedFull = false;

  const dispatch = (kind: PortKind, socket: Socket) => {
    if (socket.destroyed) return;
    const workers = serving.get(kind) ?? [];
    if (workers.length === 0) {
      const queue = held.get(kind) ?? [];
      if (queue.length >= MAX_HELD) {
        if (!warnedFull) log.warn({ port: bound[kind], held: queue.length }, `no worker serves the ${kind} port and ${MAX_HELD} connections wait; closing new ones`);
        warnedFull = true;
        socket.destroy();
        return;
      }
      queue.push({ socket, since: Date.now() });
      held.set(kind, queue);
      return;
    }
    const i = (next.get(kind) ?? 0) % workers.length;
    next.set(kind, i + 1);
    const worker = workers[i]!;
    // The primary keeps its copy until the worker says it took the connection: one sent to a
    // worker that dies before it reads it goes to the next worker instead of nowhere.
    const id = ++sent;
    pending.set(id, { socket, kind, worker, since: Date.now() });
    worker.send({ converge: 'connection', kind, id } satisfies HandoffMessage, socket, { keepOpen: true }, (err) => {
      if (err) retry(id);
    });
  };

  /** Hands a connection its worker never took to another one. */
  const retry = (id: number) => {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    stopServing(entry.worker);
    if (!entry.socket.destroyed) dispatch(entry.kind, entry.socket);
  };

  const release = (kind: PortKind) => {
    const queue = held.get(kind) ?? [];
    held.set(kind, []);
    warnedFull = false;
    const stale = Date.now() - HOLD_MS;
    for (const { socket, since } of queue) {
      if (socket.destroyed) continue;
      if (since < stale) socket.destroy();
      else dispatch(kind, socket);
    }
  };

  const stopServing = (worker: Worker) => {
    for (const [kind, workers] of serving) serving.set(kind, workers.filter((w) => w !== worker));
  };

  for (const [kind, port] of Object.entries(ports) as Array<[PortKind, number]>) {
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      // A client that resets a connection the primary still holds must not take the primary down.
      socket.on('error', () => socket.destroy());
      dispatch(kind, socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err, kind }, `the ${kind} port's listening socket failed`));
    bound[kind] = (server.address() as { port: number }).port;
    servers.set(kind, server);
  }
  // Held connections whose client gave up are closed rather than kept until a worker serves;
  // so is the primary's copy of one a worker never said it took (stuck, or out of descriptors).
  const sweep = setInterval(() => {
    const stale = Date.now() - HOLD_MS;
    for (const [id, entry] of pending) {
      if (entry.since >= stale) continue;
      pending.delete(id);
      entry.socket.destroy();
    }
    for (const [kind, queue] of held) {
      held.set(
        kind,
        queue.filter(({ socket, since }) => {
          if (since >= stale && !socket.destroyed) return true;
          socket.destroy();
          return false;
        }),
      );
    }
  }, 5000);
  sweep.unref();

  return {
    ports: bound,
    attach(worker) {
      worker.on('message', (msg: HandoffMessage) => {
        if (msg?.converge === 'serving') {
          const workers = serving.get(msg.kind) ?? [];
          if (!workers.includes(worker)) serving.set(msg.kind, [...workers, worker]);
          release(msg.kind);
        } else if (msg?.converge === 'took') {
          // The worker holds the connection now; the primary's copy of the descriptor goes.
          pending.get(msg.id)?.socket.destroy();
          pending.delete(msg.id);
        } else if (msg?.converge === 'draining') {
          stopServing(worker);
        }
      });
      worker.on('exit', () => stopServing(worker));
      // After 'disconnect' every message the worker sent has been read, its 'took's among them.
      worker.on('disconnect', () => {
        stopServing(worker);
        for (const [id, entry] of pending) if (entry.worker === worker) retry(id);
      });
    },
    async close() {
      clearInterval(sweep);
      for (const queue of held.values()) for (const { socket } of queue) socket.destroy();
      held.clear();
      for (const { socket } of pending.values()) socket.destroy();
      pending.clear();
      // Not awaited: a server whose sockets went to workers waits for the workers to close them all.
      for (const server of servers.values()) server.close();
    },
  };
}

/** A server a worker feeds with the connections the primary hands it, as if it listened. */
export interface HandedServer {
  emit(event: 'connection' | 'listening', socket?: Socket): boolean;
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

/** What a worker does with the connections the primary hands it for one port. */
export interface HandedConnections {
  /** Tells the primary to hand this worker no more connections (the start of a drain). */
  stopTaking(): void;
  /**
   * Ends the connections it was handed: idle ones at once, the others once their request is
   * answered, and whatever is left after `ms`.
   */
  drain(ms: number): Promise<void>;
}

/**
 * In a worker: takes the connections the primary hands over for `kind` into `server`, and
 * tells the primary it serves that port. The server never listens, so the 'listening' event
 * is raised by hand: Node's HTTP server starts tracking connections (for its header and
 * request timeouts and `closeAllConnections`) on it.
 */
export function serveHandedConnections(kind: PortKind, server: HandedServer): HandedConnections {
  const open = new Set<Socket>();
  server.emit('listening');
  const onMessage = (msg: HandoffMessage, socket?: Socket) => {
    if (msg?.converge !== 'connection' || msg.kind !== kind || !socket) return;
    process.send?.({ converge: 'took', id: msg.id } satisfies HandoffMessage);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    server.emit('connection', socket);
    socket.resume();
  };
  process.on('message', onMessage);
  process.send?.({ converge: 'serving', kind } satisfies HandoffMessage);
  return {
    stopTaking() {
      process.send?.({ converge: 'draining' } satisfies HandoffMessage);
    },
    async drain(ms) {
      const deadline = Date.now() + ms;
      while (open.size > 0 && Date.now() < deadline) {
        server.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 20));
      }
      server.closeAllConnections();
      process.off('message', onMessage);
    },
  };
}
