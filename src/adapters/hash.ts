// SHA-256 of files, computed in-process on a pool of worker threads (one per core, at most 4).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { HashAnswer } from './hash-worker.js';

export interface HashResult {
  hash: string;
  size: number;
}

export interface HashPool {
  /** Resolves undefined when the file vanished (ENOENT): live mail comes and goes. */
  hash(path: string): Promise<HashResult | undefined>;
  /** The same for a batch of paths, in order: one message to a worker for many small files. */
  hashBatch(paths: string[]): Promise<(HashResult | undefined)[]>;
  readonly threads: number;
  close(): Promise<void>;
}

export function createHashPool(threads = Math.min(4, availableParallelism())): HashPool {
  const n = Math.max(1, threads);
  // A worker holds one batch of paths and one read buffer: a small young generation keeps
  // each worker's memory near its baseline instead of letting garbage grow it to V8's default.
  const workers = Array.from({ length: n }, () => new Worker(new URL('./hash-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 2 } }));
  const pending = new Map<number, { resolve: (r: (HashResult | undefined)[]) => void; reject: (e: Error) => void }>();
  const load = workers.map(() => 0);
  let nextId = 0;
  workers.forEach((w, i) => {
    w.on('message', (m: HashAnswer) => {
      load[i]!--;
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      const bad = Object.values(m.errors).find((code) => code !== 'ENOENT');
      if (bad) return p.reject(new Error(`cannot read a file to hash it: ${bad}`));
      const digests = Buffer.from(m.digests);
      p.resolve(Array.from(m.sizes, (size, k) => (m.errors[k] ? undefined : { hash: digests.toString('hex', 32 * k, 32 * k + 32), size })));
    });
  });
  const hashBatch = (paths: string[]) =>
    new Promise<(HashResult | undefined)[]>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      let best = 0;
      for (let i = 1; i < workers.length; i++) if (load[i]! < load[best]!) best = i;
      load[best]!++;
      workers[best]!.postMessage({ id, paths: paths.join('\0') });
    });
  return {
    threads: n,
    hashBatch,
    hash: async (path) => (await hashBatch([path]))[0],
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/**
 * Runs `fn` over items with at most `limit` in flight, in order of the iterable. The first
 * failure stops taking new items and is thrown once those in flight have settled (none is left
 * to reject unobserved, which would end the process).
 */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failed: { e: unknown } | undefined;
  for (const item of items) {
    const p: Promise<void> = fn(item)
      .catch((e: unknown) => void (failed ??= { e }))
      .finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
    if (failed) break;
  }
  await Promise.all(running);
  if (failed) throw failed.e;
}

/**
 * Hashes `items` on a worker pool (started only when there is something to hash), in batches
 * of up to 256 files or 8 MiB (when sizes are known) made as the workers take them, two per
 * worker in flight, so every core stays busy and only those batches' absolute paths exist at
 * once. `file` is asked once per item. `onResult` gets undefined for a file that vanished
 * meanwhile: mail comes and goes. `threads`: how many workers, or a function giving the caller's
 * pool (left open: the caller hashes group after group).
 */
export async function hashEach<T>(items: Iterable<T>, file: (t: T) => { abs: string; size?: number }, onResult: (t: T, r: HashResult | undefined) => void, threads?: number | (() => HashPool)): Promise<void> {
  const it = items[Symbol.iterator]();
  const first = it.next();
  if (first.done) return;
  function* batches(): Generator<{ items: T[]; paths: string[] }> {
    let cur: T[] = [];
    let paths: string[] = [];
    let bytes = 0;
    for (let r: IteratorResult<T> = first; !r.done; r = it.next()) {
      const { abs, size = 0 } = file(r.value);
      if (cur.length && (cur.length >= 256 || bytes + size > 8 << 20)) {
        yield { items: cur, paths };
        cur = [];
        paths = [];
        bytes = 0;
      }
      cur.push(r.value);
      paths.push(abs);
      bytes += size;
    }
    if (cur.length) yield { items: cur, paths };
  }
  const pool = typeof threads === 'function' ? threads() : createHashPool(threads);
  try {
    await forEachLimit(batches(), pool.threads * 2, async (batch) => {
      const results = await pool.hashBatch(batch.paths);
      batch.items.forEach((t, k) => onResult(t, results[k]));
    });
  } finally {
    if (typeof threads !== 'function') await pool.close();
  }
}
