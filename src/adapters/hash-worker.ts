// Worker thread: hashes whole files with SHA-256 in 1 MiB reads, so both cores can hash while
// the main thread walks the tree. Memory stays at one buffer per worker.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const buf = Buffer.allocUnsafe(1 << 20);

parentPort!.on('message', (msg: { id: number; path: string }) => {
  let fd: number | undefined;
  try {
    fd = openSync(msg.path, 'r');
    const h = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
    parentPort!.postMessage({ id: msg.id, hash: h.digest('hex'), size });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as NodeJS.ErrnoException).code ?? String(e) });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
