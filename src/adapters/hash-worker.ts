// Worker thread: hashes whole files with SHA-256, a batch of paths per message (maildirs are
// many small files: one message per file would cost more than the hashing). Per file the cost
// is the system calls, so a file smaller than the read buffer is read once (a short read of a
// regular file is its end) and hashed in one call; the answer is one buffer of digests and one
// of sizes, moved to the main thread rather than copied as an object per file.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash, hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const buf = Buffer.allocUnsafe(1 << 20);

/** Writes the digest at `out[at..at+32]`; returns the size read. */
function hashOne(path: string, out: Buffer, at: number): number {
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

export interface HashAnswer {
  id: number;
  /** 32 bytes per path, in order. */
  digests: ArrayBuffer;
  sizes: Float64Array;
  /** Error codes by position, for the paths that could not be read. */
  errors: Record<number, string>;
}

parentPort!.on('message', (msg: { id: number; paths: string }) => {
  const paths = msg.paths ? msg.paths.split('\0') : [];
  const digests = Buffer.alloc(32 * paths.length);
  const sizes = new Float64Array(paths.length);
  const errors: Record<number, string> = {};
  paths.forEach((p, k) => {
    try {
      sizes[k] = hashOne(p, digests, 32 * k);
    } catch (e) {
      errors[k] = (e as NodeJS.ErrnoException).code ?? String(e);
    }
  });
  const answer: HashAnswer = { id: msg.id, digests: digests.buffer as ArrayBuffer, sizes, errors };
  parentPort!.postMessage(answer, [answer.digests, sizes.buffer as ArrayBuffer]);
});
