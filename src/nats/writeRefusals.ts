/**
 * Whether nats-server refuses this process's writes because its storage is full
 * (docs/architecture.md, "Event store"), as the answers to those writes tell: JetStream's
 * `insufficient resources` (10023), which nats-server answers once its store reaches the
 * limit it set itself, 75% of the disk free at its start unless configured. The outcome of
 * such a write is known (nothing was stored), so it is not an unknown outcome.
 */
export interface WriteRefusals {
  /** Since when writes are refused, and why; undefined while they are not. */
  refused(): { readonly since: string; readonly reason: string } | undefined;
  /** Records `err` if it is a refusal for full storage; answers whether it was. */
  note(err: unknown): boolean;
  /** A write went through: storage takes writes again. */
  accepted(): void;
  /** Calls `listener` when writes start or stop being refused; answers a function that removes it. */
  onChange(listener: (refused: boolean) => void): () => void;
}

/** JetStream's error code for a store at its limit. */
export const INSUFFICIENT_RESOURCES = 10023;

/** True for JetStream's answer to a write its full storage cannot take. */
export function isStorageFull(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown }; message?: unknown } | undefined;
  if (e?.code === INSUFFICIENT_RESOURCES || e?.api_error?.err_code === INSUFFICIENT_RESOURCES) return true;
  return typeof e?.message === 'string' && /insufficient (storage )?resources|no space left on device/i.test(e.message);
}

export function writeRefusals(now: () => Date = () => new Date()): WriteRefusals {
  let state: { since: string; reason: string } | undefined;
  const listeners = new Set<(refused: boolean) => void>();
  const tell = (refused: boolean) => {
    for (const l of listeners) l(refused);
  };
  return {
    refused: () => state,
    note(err) {
      if (!isStorageFull(err)) return false;
      if (!state) {
        state = { since: now().toISOString(), reason: `nats-server's storage is full: ${(err as Error).message}` };
        tell(true);
      }
      return true;
    },
    accepted() {
      if (!state) return;
      state = undefined;
      tell(false);
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** The stream a process writes to while its writes are refused, to tell when storage takes them again. */
export const PROBE_STREAM = 'CONVERGE_PROBE';
/** How often it tries. */
export const PROBE_MS = 2000;

/**
 * While `refusals` says writes are refused, writes one small message every `PROBE_MS` to
 * `PROBE_STREAM` (one message per process, kept an hour), made on the first try; the first
 * that is stored ends the refusal. Answers a function that stops probing.
 */
export function probeWhileRefused(refusals: WriteRefusals, write: () => Promise<void>): () => void {
  let timer: NodeJS.Timeout | undefined;
  const attempt = async () => {
    try {
      await write();
      refusals.accepted();
    } catch (err) {
      // Still full, or NATS away: the next attempt tells.
      refusals.note(err);
    }
  };
  const off = refusals.onChange((refused) => {
    clearInterval(timer);
    timer = refused ? setInterval(() => void attempt(), PROBE_MS) : undefined;
    timer?.unref();
  });
  return () => {
    off();
    clearInterval(timer);
  };
}

/** What `/ready` says while `link`'s writes are refused; undefined while they are not. */
export function refusing(link: { readonly writes: WriteRefusals }): string | undefined {
  const r = link.writes.refused();
  return r && `the event store refuses writes since ${r.since}: ${r.reason}`;
}
