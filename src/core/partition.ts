/** 32-bit FNV-1a over the UTF-16 code units of a string. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The partition of an aggregate instance: FNV-1a(`aggregate:id`) mod `partitions`. */
export function partitionOf(aggregate: string, id: string, partitions: number): number {
  return fnv1a(`${aggregate}:${id}`) % partitions;
}

/** The worker that owns a partition: partition mod workers. */
export function ownerOf(partition: number, workers: number): number {
  return partition % workers;
}
