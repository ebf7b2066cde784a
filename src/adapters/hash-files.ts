// SHA-256 of a batch of files, read synchronously: the work of one hashing lane (a worker thread
// or the main thread, src/adapters/hash.ts). At 2 KB a message the cost is the system calls, so a
// file smaller than the read buffer is read once (a short read of a regular file is its end) and
// hashed in one call; the answer is one buffer of digests and one of sizes, which a worker moves
// to the main thread rather than copying an object per file.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash, hash } from 'node:crypto';

export interface HashedBatch {
  /** 32 bytes per path, in order. */
  digests: ArrayBuffer;
  sizes: Float64Array;
  /** Error codes by position, for the paths that could not be read. */
  errors: Record<number, string>;
}

/** One read buffer per lane. */
export const readBuffer = (): Buffer => Buffer.allocUnsafeSlow(1 << 20);

/** Writes the digest at `out[at..at+32]`; returns the size read. */
function hashOne(path: string, buf: Buffer, out: Buffer, at: number): number {
  const fd = openSync(path, 'r');
  try {
    let n = readSync(fd, buf, 0, buf.length, null);
    if (n < buf.length) {
      (hash('sha256', buf.subarray(0, n), 'buffer') as Buffer).copy(out, at);
      return n;
    }
    const h = createHash('sha256');
    let size = 0;
    for (; n > 0; n = readSync(fd, buf, 0, buf.length, null)) {
      h.update(buf.subarray(0, n));
      size += n;
    }
    h.digest().copy(out, at);
    return size;
  } finally {
    closeSync(fd);
  }
}

export function hashPaths(paths: readonly string[], buf: Buffer): HashedBatch {
  const digests = Buffer.alloc(32 * paths.length);
  const sizes = new Float64Array(paths.length);
  const errors: Record<number, string> = {};
  paths.forEach((p, k) => {
    try {
      sizes[k] = hashOne(p, buf, digests, 32 * k);
    } catch (e) {
      errors[k] = (e as NodeJS.ErrnoException).code ?? String(e);
    }
  });
  return { digests: digests.buffer as ArrayBuffer, sizes, errors };
}
