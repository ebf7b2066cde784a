// Worker thread: hashes whole files with SHA-256 in 1 MiB reads, a batch of paths per message
// (maildirs are many small files: one message per file would cost more than the hashing).
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const buf = Buffer.allocUnsafe(1 << 20);

function hashOne(path: string): { hash?: string; size?: number; error?: string } {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const h = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
    return { hash: h.digest('hex'), size };
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code ?? String(e) };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

parentPort!.on('message', (msg: { id: number; paths: string[] }) => {
  parentPort!.postMessage({ id: msg.id, results: msg.paths.map(hashOne) });
});
