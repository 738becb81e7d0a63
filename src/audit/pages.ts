/** Pages of rows for the walks of verify and prune. */
export const PAGE = 2000;

/**
 * Rows in seq order, a page at a time. A full page ends before its last seq
 * (checkpoints can share a seq: a head and an anchor), so that the next page,
 * which starts after a seq, misses none of them.
 */
export function pages<T extends { seq: number }>(fetch: (after: number) => Promise<T[]>, from = Number.MIN_SAFE_INTEGER) {
  let buffer: T[] = [];
  let index = 0;
  let after = from;
  let done = false;
  return {
    async next(): Promise<T | undefined> {
      while (index >= buffer.length) {
        if (done) return undefined;
        const page = await fetch(after);
        index = 0;
        if (page.length < PAGE) {
          done = true;
          buffer = page;
        } else {
          const lastSeq = Number(page[page.length - 1]!.seq);
          const kept = page.filter((row) => Number(row.seq) !== lastSeq);
          buffer = kept.length > 0 ? kept : page;
        }
        if (buffer.length > 0) after = Number(buffer[buffer.length - 1]!.seq);
      }
      return buffer[index++];
    },
  };
}
