// Builds the manifest: walks the vmail volume and the dump folder, hashes every regular file on
// the worker pool, and reuses the previous backup's hash for a file whose size and mtime have
// not changed (maildir messages never change in place, so that is nearly every file).
import { createReadStream, createWriteStream, lstatSync, type Stats } from 'node:fs';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createHashPool, forEachLimit } from '../adapters/hash.js';
import type { ManifestEntry } from '../plan/manifest.js';

export interface VmailTree {
  /** Regular files, relative to the volume root. */
  files: { path: string; size: number; mtimeMs: number; mode: number; uid: number; gid: number }[];
  dirs: { path: string; mode: number; uid: number; gid: number }[];
  symlinks: number;
}

/** Walks a folder depth-first; paths relative to root, '/'-separated. */
export async function scanTree(root: string): Promise<VmailTree> {
  const tree: VmailTree = { files: [], dirs: [], symlinks: 0 };
  const stack = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(join(root, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') continue; // a folder removed while we read
      throw e;
    }
    names.sort();
    // lstatSync: 3x faster than awaiting each lstat and, unlike many in flight at once, no
    // garbage (measured at 38k files: 0.54 s and +0 MB against 1.7 s, or 0.96 s and +20 MB RSS).
    // It blocks the event loop for one folder at a time: milliseconds.
    for (const name of names) {
      const p = rel ? `${rel}/${name}` : name;
      let st: Stats | undefined;
      try {
        st = lstatSync(join(root, p), { throwIfNoEntry: false });
      } catch {
        continue; // replaced by something unreadable while we read: the next run takes it
      }
      if (!st) continue;
      if (st.isDirectory()) {
        tree.dirs.push({ path: p, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
        stack.push(p);
      } else if (st.isFile()) {
        tree.files.push({ path: p, size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
      } else if (st.isSymbolicLink()) {
        tree.symlinks++;
      }
    }
  }
  return tree;
}

export type HashCache = Map<string, { size: number; mtimeMs: number; hash: string }>;

/** The cache is the last published manifest with sizes and times: one JSON array per line. */
export async function loadHashCache(file: string): Promise<HashCache> {
  const cache: HashCache = new Map();
  try {
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of rl) {
      try {
        const [path, size, mtimeMs, hash] = JSON.parse(line) as [string, number, number, string];
        if (typeof path === 'string' && /^[0-9a-f]{64}$/.test(hash)) cache.set(path, { size, mtimeMs, hash });
      } catch {
        // A damaged line costs one re-hash, nothing more.
      }
    }
  } catch {
    // No cache yet: everything is hashed.
  }
  return cache;
}

export async function saveHashCache(file: string, entries: Iterable<ManifestEntry>): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const out = createWriteStream(tmp, { mode: 0o600 });
  for (const e of entries) {
    if (!out.write(JSON.stringify([e.path, e.size, e.mtimeMs, e.hash]) + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  await rename(tmp, file);
}

export interface HashStats {
  hashed: number;
  hashedBytes: number;
  reused: number;
  vanished: string[];
}

/** Files below one local folder; their manifest paths are `prefix/path` ('' for none). */
export interface HashSource {
  root: string;
  prefix: string;
  files: readonly { path: string; size: number; mtimeMs: number }[];
}

/**
 * Hashes the files of `sources`. Entries whose size and mtime match the cache reuse its hash.
 * Files that vanish meanwhile are reported, not fatal: mail comes and goes. Memory: one entry
 * per file (the manifest itself); absolute paths exist only for the files being hashed.
 */
export async function hashFiles(sources: readonly HashSource[], cache: HashCache, threads?: number): Promise<{ entries: Map<string, ManifestEntry>; stats: HashStats }> {
  const entries = new Map<string, ManifestEntry>();
  const stats: HashStats = { hashed: 0, hashedBytes: 0, reused: 0, vanished: [] };
  type Todo = { src: HashSource; i: number; path: string };
  const todo: Todo[] = [];
  for (const src of sources) {
    src.files.forEach((f, i) => {
      const path = src.prefix ? `${src.prefix}/${f.path}` : f.path;
      const c = cache.get(path);
      if (c && c.size === f.size && c.mtimeMs === f.mtimeMs) {
        entries.set(path, { path, hash: c.hash, size: f.size, mtimeMs: f.mtimeMs });
        stats.reused++;
      } else todo.push({ src, i, path });
    });
  }
  if (todo.length === 0) return { entries, stats };
  const pool = createHashPool(threads);
  try {
    // Batches of up to 64 files or 8 MiB, made as the workers take them, two per worker in
    // flight, so every core stays busy and only those batches' absolute paths exist at once.
    function* batches(): Generator<Todo[]> {
      let cur: Todo[] = [];
      let bytes = 0;
      for (const t of todo) {
        const size = t.src.files[t.i]!.size;
        if (cur.length && (cur.length >= 64 || bytes + size > 8 << 20)) {
          yield cur;
          cur = [];
          bytes = 0;
        }
        cur.push(t);
        bytes += size;
      }
      if (cur.length) yield cur;
    }
    await forEachLimit(batches(), pool.threads * 2, async (batch) => {
      const results = await pool.hashBatch(batch.map((t) => join(t.src.root, t.src.files[t.i]!.path)));
      batch.forEach((t, k) => {
        const r = results[k];
        if (!r) {
          stats.vanished.push(t.path);
          return;
        }
        stats.hashed++;
        stats.hashedBytes += r.size;
        entries.set(t.path, { path: t.path, hash: r.hash, size: r.size, mtimeMs: t.src.files[t.i]!.mtimeMs });
      });
    });
  } finally {
    await pool.close();
  }
  return { entries, stats };
}

/** Most vmail files belong to one owner (uid/gid 5000): record it once, and the exceptions. */
export function ownershipOf(tree: VmailTree): { uid: number; gid: number; exceptions: { path: string; uid: number; gid: number }[] } {
  const counts = new Map<string, number>();
  for (const e of [...tree.files, ...tree.dirs]) counts.set(`${e.uid}:${e.gid}`, (counts.get(`${e.uid}:${e.gid}`) ?? 0) + 1);
  let best = '5000:5000';
  let max = -1;
  for (const [k, n] of counts) if (n > max) [best, max] = [k, n];
  const [uid, gid] = best.split(':').map(Number) as [number, number];
  const exceptions = [...tree.files, ...tree.dirs].filter((e) => e.uid !== uid || e.gid !== gid).slice(0, 10_000).map((e) => ({ path: e.path, uid: e.uid, gid: e.gid }));
  return { uid, gid, exceptions };
}
