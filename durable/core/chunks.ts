/** Items in runs of at most `size` (statements bind at most so many values). */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Items in runs whose `sizeOf` adds up to at most `max` (a run of one may be
 * larger): rows and parameters have a size limit. The same items always split
 * the same way.
 */
export function chunksBySize<T>(items: T[], sizeOf: (item: T) => number, max: number): T[][] {
  const out: T[][] = [];
  let part: T[] = [];
  let size = 0;
  for (const item of items) {
    const n = sizeOf(item);
    if (part.length > 0 && size + n > max) {
      out.push(part);
      part = [];
      size = 0;
    }
    part.push(item);
    size += n;
  }
  if (part.length > 0) out.push(part);
  return out;
}
