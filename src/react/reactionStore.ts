import { openBucket } from '../nats/buckets.js';
import type { NatsLink } from '../nats/connection.js';

/** An event a reaction could not handle, set aside under its `park` policy. */
export interface ParkedReaction {
  /** The reactor or process. */
  readonly reaction: string;
  readonly kind: 'reactor' | 'process';
  readonly position: number;
  readonly eventIndex: number;
  readonly aggregate: string;
  readonly id: string;
  readonly type: string;
  readonly error: string;
  readonly parkedAt: string;
}

/**
 * Where reactors and processes keep their checkpoints and parked events: in a NATS KV bucket
 * on NATS, so that whichever host holds the reactions' lease goes on from where the last one
 * stopped; in memory for an in-process runtime on the in-memory store.
 */
export interface ReactionStore {
  /** The last position a reaction has handled everything up to; 0 when it has none. */
  checkpoint(reaction: string): Promise<number>;
  setCheckpoint(reaction: string, position: number): Promise<void>;
  park(entry: ParkedReaction): Promise<void>;
  parked(reaction?: string): Promise<ParkedReaction[]>;
  unpark(reaction: string, position: number, eventIndex: number): Promise<void>;
}

/** The bucket of reactions' checkpoints and parked events. */
export const REACTIONS_BUCKET = 'converge-reactions';

const cpKey = (reaction: string) => `cp.${reaction}`;
const parkedKey = (reaction: string, position: number, eventIndex: number) => `pk.${reaction}.${position}.${eventIndex}`;

/** The reaction store in memory. */
export function memoryReactionStore(): ReactionStore {
  const checkpoints = new Map<string, number>();
  const parked = new Map<string, ParkedReaction>();
  return {
    checkpoint: async (reaction) => checkpoints.get(reaction) ?? 0,
    setCheckpoint: async (reaction, position) => void checkpoints.set(reaction, position),
    park: async (entry) => void parked.set(parkedKey(entry.reaction, entry.position, entry.eventIndex), structuredClone(entry)),
    parked: async (reaction) => sorted([...parked.values()].filter((p) => reaction === undefined || p.reaction === reaction)),
    unpark: async (reaction, position, eventIndex) => void parked.delete(parkedKey(reaction, position, eventIndex)),
  };
}

/** The reaction store in the `converge-reactions` KV bucket, with `replicas` copies: made when missing, scaled when made with another count. */
export async function kvReactionStore(link: NatsLink, replicas: number): Promise<ReactionStore> {
  const { kv } = await openBucket(link, REACTIONS_BUCKET, { history: 1, replicas });
  return {
    async checkpoint(reaction) {
      const entry = await kv.get(cpKey(reaction));
      return entry && entry.operation === 'PUT' ? Number(entry.string()) : 0;
    },
    setCheckpoint: async (reaction, position) => void (await kv.put(cpKey(reaction), String(position))),
    park: async (entry) => void (await kv.put(parkedKey(entry.reaction, entry.position, entry.eventIndex), JSON.stringify(entry))),
    async parked(reaction) {
      const out: ParkedReaction[] = [];
      const keys = await kv.keys(reaction === undefined ? 'pk.>' : `pk.${reaction}.>`);
      for await (const key of keys) {
        const entry = await kv.get(key);
        if (entry && entry.operation === 'PUT') out.push(entry.json<ParkedReaction>());
      }
      return sorted(out);
    },
    unpark: async (reaction, position, eventIndex) => void (await kv.delete(parkedKey(reaction, position, eventIndex))),
  };
}

function sorted(entries: ParkedReaction[]): ParkedReaction[] {
  return entries.sort((a, b) => a.reaction.localeCompare(b.reaction) || a.position - b.position || a.eventIndex - b.eventIndex);
}
