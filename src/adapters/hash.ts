// SHA-256 of files, computed in-process on a pool of worker threads (one per core, at most 4).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

export interface HashResult {
  hash: string;
  size: number;
}

export interface HashPool {
  /** Resolves undefined when the file vanished (ENOENT): live mail comes and goes. */
  hash(path: string): Promise<HashResult | undefined>;
  close(): Promise<void>;
}

export function createHashPool(threads = Math.min(4, availableParallelism())): HashPool {
  const workers = Array.from({ length: Math.max(1, threads) }, () => new Worker(new URL('./hash-worker.js', import.meta.url)));
  const pending = new Map<number, { resolve: (r: HashResult | undefined) => void; reject: (e: Error) => void }>();
  const load = workers.map(() => 0);
  let nextId = 0;
  workers.forEach((w, i) => {
    w.on('message', (m: { id: number; hash?: string; size?: number; error?: string }) => {
      load[i]!--;
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      if (m.error === 'ENOENT') p.resolve(undefined);
      else if (m.error) p.reject(new Error(`cannot read a file to hash it: ${m.error}`));
      else p.resolve({ hash: m.hash!, size: m.size! });
    });
  });
  return {
    hash(path) {
      return new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        let best = 0;
        for (let i = 1; i < workers.length; i++) if (load[i]! < load[best]!) best = i;
        load[best]!++;
        workers[best]!.postMessage({ id, path });
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** Runs `fn` over items with at most `limit` in flight, in order of the iterable. */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  for (const item of items) {
    const p: Promise<void> = fn(item).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
}
