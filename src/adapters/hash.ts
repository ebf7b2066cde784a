// SHA-256 of files on several lanes: the main thread and worker threads (one lane per core, at
// most 4). The main thread is a lane of its own because a worker costs ~14 MiB of memory (its own
// V8 heap and Node.js), and the run's peak memory is what issue 19 bounds.
import { availableParallelism } from 'node:os';
import { setImmediate as turn } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { hashPaths, readBuffer, type HashedBatch } from './hash-files.js';

export interface HashResult {
  hash: string;
  size: number;
}

export interface HashPool {
  /** Resolves undefined when the file vanished (ENOENT): live mail comes and goes. */
  hash(path: string): Promise<HashResult | undefined>;
  /**
   * The same for a batch of paths, in order: one message to a worker for many small files.
   * `bytes`, when every size is known: a batch of at most MAIN_LANE_BYTES may be hashed on the
   * main thread (which it blocks meanwhile) when the workers are busy.
   */
  hashBatch(paths: string[], bytes?: number): Promise<(HashResult | undefined)[]>;
  /** Lanes: the main thread and `threads - 1` workers. */
  readonly threads: number;
  close(): Promise<void>;
}

/** The most the main thread hashes at once: a few milliseconds of blocking. */
const MAIN_LANE_BYTES = 8 << 20;

function results(b: HashedBatch): (HashResult | undefined)[] {
  const bad = Object.values(b.errors).find((code) => code !== 'ENOENT');
  if (bad) throw new Error(`cannot read a file to hash it: ${bad}`);
  const digests = Buffer.from(b.digests);
  return Array.from(b.sizes, (size, k) => (b.errors[k] ? undefined : { hash: digests.toString('hex', 32 * k, 32 * k + 32), size }));
}

export function createHashPool(threads = Math.min(4, availableParallelism())): HashPool {
  const n = Math.max(1, threads);
  // A worker holds one batch of paths and one read buffer: a small young generation keeps
  // each worker's memory near its baseline instead of letting garbage grow it to V8's default.
  const workers = Array.from({ length: n - 1 }, () => new Worker(new URL('./hash-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 2 } }));
  const pending = new Map<number, { resolve: (r: (HashResult | undefined)[]) => void; reject: (e: unknown) => void }>();
  const load = workers.map(() => 0);
  let here: Buffer | undefined;
  let nextId = 0;
  workers.forEach((w, i) => {
    w.on('message', (m: HashedBatch & { id: number }) => {
      load[i]!--;
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      try {
        p.resolve(results(m));
      } catch (e) {
        p.reject(e);
      }
    });
  });
  const hashBatch = async (paths: string[], bytes?: number): Promise<(HashResult | undefined)[]> => {
    let best = -1;
    for (let i = 0; i < workers.length; i++) if (best < 0 || load[i]! < load[best]!) best = i;
    if (best < 0 || (load[best]! >= 2 && bytes !== undefined && bytes <= MAIN_LANE_BYTES)) {
      // Every worker has a batch queued behind the one it hashes (or there is none): this one is
      // hashed here, then the event loop turns so their answers are taken and they get new ones.
      const r = results(hashPaths(paths, (here ??= readBuffer())));
      await turn();
      return r;
    }
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      load[best]!++;
      workers[best]!.postMessage({ id, paths: paths.join('\0') });
    });
  };
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
 * Hashes `items` on a hash pool (started only when there is something to hash), in batches
 * of up to 256 files or 8 MiB (when sizes are known) made as the lanes take them, two per lane in
 * flight, so every core stays busy and only those batches' absolute paths exist at once. `onResult` gets
 * undefined for a file that vanished meanwhile: mail comes and goes.
 */
export async function hashEach<T>(items: Iterable<T>, file: (t: T) => { abs: string; size?: number }, onResult: (t: T, r: HashResult | undefined) => void, threads?: number): Promise<void> {
  const it = items[Symbol.iterator]();
  const first = it.next();
  if (first.done) return;
  function* batches(): Generator<{ batch: T[]; bytes?: number }> {
    let cur: T[] = [];
    let bytes: number | undefined = 0;
    for (let r: IteratorResult<T> = first; !r.done; r = it.next()) {
      const size = file(r.value).size;
      if (cur.length && (cur.length >= 256 || (bytes ?? 0) + (size ?? 0) > 8 << 20)) {
        yield { batch: cur, bytes };
        cur = [];
        bytes = 0;
      }
      cur.push(r.value);
      bytes = bytes === undefined || size === undefined ? undefined : bytes + size;
    }
    if (cur.length) yield { batch: cur, bytes };
  }
  const pool = createHashPool(threads);
  try {
    await forEachLimit(batches(), pool.threads * 2, async ({ batch, bytes }) => {
      const results = await pool.hashBatch(batch.map((t) => file(t).abs), bytes);
      batch.forEach((t, k) => onResult(t, results[k]));
    });
  } finally {
    await pool.close();
  }
}
