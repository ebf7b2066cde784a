// Builds the manifest: walks the vmail volume folder by folder, hashes every regular file on the
// worker pool, and reuses the previous backup's hash for a file whose size and mtime have not
// changed (maildir messages never change in place, so that is nearly every file). The previous
// manifest (the local hash cache) is stored in the walk's order and read alongside the walk, one
// folder at a time: memory holds the new index, not also the old one (issue 4, "Memory").
import { closeSync, createReadStream, fsyncSync, lstatSync, openSync, readdirSync, writeSync, type Stats } from 'node:fs';
import { lstat, mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createHashPool, hashEach, type HashPool } from '../adapters/hash.js';
import { checkMemory } from '../adapters/memory.js';
import type { BackupManifest } from '../plan/backup-manifest.js';
import type { ManifestEntry } from '../plan/manifest.js';
import { compareFolders, Folder, FolderReuse, VmailIndex, type CachedFile, type ColumnStore, type Listing } from '../plan/vmail-index.js';

/** First line of a hash cache written in walk order (older caches have none and are read whole). */
const CACHE_HEADER = JSON.stringify({ hashCache: 2, order: 'walk' });
/** Previous paths kept as rename candidates: a day's renames are a few thousand. */
const GONE_CAP = 20_000;

/**
 * The last published manifest with sizes and times (one JSON array per line), read one mail
 * folder at a time in walk order. Paths it holds that the walk does not claim are `gone`: the
 * old names of renamed or deleted mail.
 */
export class PreviousManifest {
  /** Files outside the mail tree (the dump's). */
  readonly other = new Map<string, CachedFile>();
  readonly gone: ManifestEntry[] = [];
  /** Every path of the mail tree the walk did not claim, also those past `gone`'s cap. */
  goneCount = 0;
  private pending?: { folder: string; name: string; c: CachedFile };
  private lines?: AsyncIterator<string>;
  /** An old unordered cache, read whole: folder → name → entry. */
  private whole?: Map<string, Map<string, CachedFile>>;

  private constructor(private readonly prefix: string) {}

  static async open(file: string, prefix: string): Promise<PreviousManifest> {
    const p = new PreviousManifest(prefix);
    try {
      const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
      p.lines = rl[Symbol.asyncIterator]();
      const first = await p.lines.next();
      if (first.done) p.lines = undefined;
      else if (first.value !== CACHE_HEADER) {
        p.whole = new Map();
        p.take(first.value);
        for (let r = await p.lines.next(); !r.done; r = await p.lines.next()) p.take(r.value);
        p.lines = undefined;
      } else await p.advance();
    } catch {
      // No cache yet (or unreadable): everything is hashed.
      p.lines = undefined;
      p.pending = undefined;
    }
    return p;
  }

  /**
   * Reuses the cached hashes of mail folder `folder` (call in walk order); its cached paths the
   * folder does not hold are gone. Returns how many hashes it reused.
   */
  async reuseFor(folder: Folder): Promise<number> {
    const rel = folder.path;
    const reuse = new FolderReuse(folder);
    if (this.whole) {
      for (const [name, c] of this.whole.get(rel) ?? []) if (!reuse.take(name, c)) this.forget(rel, name, c);
      this.whole.delete(rel);
      return reuse.reused;
    }
    while (this.pending && compareFolders(this.pending.folder, rel) < 0) {
      this.forget(this.pending.folder, this.pending.name, this.pending.c);
      await this.advance();
    }
    while (this.pending && this.pending.folder === rel) {
      if (!reuse.take(this.pending.name, this.pending.c)) this.forget(rel, this.pending.name, this.pending.c);
      await this.advance();
    }
    return reuse.reused;
  }

  /** Ends the walk: what no folder claimed is gone. */
  async finish(): Promise<void> {
    if (this.whole) for (const [folder, m] of this.whole) for (const [name, c] of m) this.forget(folder, name, c);
    this.whole = undefined;
    while (this.pending) {
      this.forget(this.pending.folder, this.pending.name, this.pending.c);
      await this.advance();
    }
  }

  forget(folder: string, name: string, c: CachedFile): void {
    this.goneCount++;
    if (this.gone.length < GONE_CAP) this.gone.push({ path: folder ? `${this.prefix}/${folder}/${name}` : `${this.prefix}/${name}`, ...c });
  }

  private async advance(): Promise<void> {
    this.pending = undefined;
    while (this.lines && !this.pending) {
      // A cache that cannot be read further costs re-hashing the rest, nothing more.
      const r = await this.lines.next().catch(() => ({ done: true as const, value: undefined }));
      if (r.done) this.lines = undefined;
      else this.take(r.value);
    }
  }

  /** One line; a damaged line costs one re-hash, nothing more. */
  private take(line: string): void {
    let path: unknown, size: unknown, mtimeMs: unknown, hash: unknown;
    try {
      [path, size, mtimeMs, hash] = JSON.parse(line) as unknown[];
    } catch {
      return;
    }
    if (typeof path !== 'string' || typeof size !== 'number' || typeof mtimeMs !== 'number' || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return;
    const c = { size, mtimeMs, hash };
    if (!path.startsWith(`${this.prefix}/`)) {
      this.other.set(path, c);
      return;
    }
    const rel = path.slice(this.prefix.length + 1);
    const slash = rel.lastIndexOf('/');
    const folder = slash < 0 ? '' : rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    if (this.whole) {
      let m = this.whole.get(folder);
      if (!m) this.whole.set(folder, (m = new Map()));
      m.set(name, c);
    } else this.pending = { folder, name, c };
  }
}

/**
 * Writes the cache for the next run: header, the files outside the mail tree, the tree in walk
 * order. Synchronous writes of 256 KiB: the lines die young instead of waiting in a stream.
 */
export async function saveHashCache(file: string, manifest: BackupManifest): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    let chunk = CACHE_HEADER + '\n';
    for (const e of manifest.entries()) {
      chunk += JSON.stringify([e.path, e.size, e.mtimeMs, e.hash]) + '\n';
      if (chunk.length > 256 << 10) (writeSync(fd, chunk), (chunk = ''));
    }
    writeSync(fd, chunk);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  await rename(tmp, file);
}

export interface TreeWalk {
  index: VmailIndex;
  symlinks: number;
  /** Files whose hash came from the previous manifest. */
  reused: number;
}

/**
 * Walks a folder depth-first in sorted order (the order of compareFolders), one folder's
 * listing at a time, and merges each folder with the previous manifest's entries for it.
 */
export async function walkTree(root: string, prefix: string, previous?: PreviousManifest, store?: ColumnStore): Promise<TreeWalk> {
  const index = new VmailIndex(prefix, store);
  const top = await lstat(root);
  const stack: { rel: string; st: Pick<Stats, 'mode' | 'uid' | 'gid'> }[] = [{ rel: '', st: top }];
  let symlinks = 0;
  let reused = 0;
  while (stack.length) {
    const { rel, st } = stack.pop()!;
    const listed = readFolder(root, rel, st);
    // Without a previous manifest the walk never yields: the watch's timer cannot run.
    checkMemory();
    if (!listed) continue;
    symlinks += listed.symlinks;
    if (previous) reused += await previous.reuseFor(listed.folder);
    index.add(listed.folder);
    for (let i = listed.subs.length - 1; i >= 0; i--) stack.push(listed.subs[i]!);
  }
  await previous?.finish();
  return { index, symlinks, reused };
}

/**
 * One folder's listing as a Folder record (undefined: removed while we read). A function of its
 * own so that the listing's strings and objects (~20 MB at 127k files) are garbage before the
 * walk awaits the previous manifest's entries for the folder.
 */
function readFolder(root: string, rel: string, dirSt: Pick<Stats, 'mode' | 'uid' | 'gid'>): { folder: Folder; subs: { rel: string; st: Stats }[]; symlinks: number } | undefined {
  let names: string[];
  try {
    // Sync, like lstatSync below: an async readdir lists on libuv's thread pool, whose
    // malloc arenas kept ~15 MB of freed listings at 357k files (RSS, not heap).
    names = readdirSync(join(root, rel));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel !== '') return undefined;
    throw e;
  }
  names.sort();
  const files: Listing = { names: [], size: [], mtimeMs: [], owners: new Map() };
  const subs: { rel: string; st: Stats }[] = [];
  let symlinks = 0;
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
    if (st.isDirectory()) subs.push({ rel: p, st });
    else if (st.isFile()) {
      if (st.uid !== dirSt.uid || st.gid !== dirSt.gid) files.owners.set(files.names.length, [st.uid, st.gid]);
      files.names.push(name);
      files.size.push(st.size);
      files.mtimeMs.push(Math.floor(st.mtimeMs));
    }
    else if (st.isSymbolicLink()) symlinks++;
  }
  return { folder: new Folder(rel, dirSt.mode & 0o7777, dirSt.uid, dirSt.gid, files), subs, symlinks };
}

export interface HashStats {
  hashed: number;
  hashedBytes: number;
  reused: number;
  vanished: string[];
}

/** Fewer files to hash than this go to one worker. */
const SMALL_HASH_JOB = 20_000;

/**
 * Consecutive folders with files to hash, as many as the index's memory budget holds (a bigger
 * folder alone): the hashing keeps a group loaded until its last answer is back.
 */
export function* hashGroups(folders: readonly Folder[], budget: number): Generator<Folder[]> {
  let group: Folder[] = [];
  let bytes = 0;
  for (const f of folders) {
    if (f.unhashed === 0) continue;
    if (group.length && bytes + f.bytes > budget) {
      yield group;
      group = [];
      bytes = 0;
    }
    group.push(f);
    bytes += f.bytes;
  }
  if (group.length) yield group;
}

/**
 * Hashes the index's files that have no hash yet; a file that vanished leaves the index. The
 * batches run on from folder to folder within a group of folders the memory budget holds, kept
 * loaded until the group's last answer is back: answers written into a folder evicted meanwhile
 * brought it back from the spill file (1M messages: 627 MB read for a 110 MB index, and the peak
 * of runs 1 and 2), while waiting for every folder's last batch left a core idle at each
 * folder's end (100k files in 80 folders: ~12 % of the workers' time).
 */
export async function hashIndex(index: VmailIndex, root: string, threads?: number): Promise<HashStats> {
  const stats: HashStats = { hashed: 0, hashedBytes: 0, reused: 0, vanished: [] };
  // A day's or an hour's new mail is a fraction of a second on one worker (~14 µs a message
  // measured); a second worker would add its ~12 MiB to the run's peak for nothing.
  const todo = index.folders.reduce((n, f) => n + f.unhashed, 0);
  threads ??= todo < SMALL_HASH_JOB ? 1 : undefined;
  function* unhashed(group: Folder[]): Generator<{ folder: Folder; i: number; dir: string }> {
    for (const folder of group) {
      const dir = `${join(root, folder.path)}/`;
      for (const i of index.unhashedIn(folder)) yield { folder, i, dir };
    }
  }
  let pool: HashPool | undefined;
  try {
    for (const group of hashGroups(index.folders, index.memoryBudget)) {
      index.keepLoaded(group);
      await hashEach(
        unhashed(group),
        ({ folder, i, dir }) => ({ abs: dir + folder.name(i), size: folder.size[i]! }),
        ({ folder, i }, r) => {
          if (!r) {
            const path = index.pathOf(folder, i);
            index.delete(path);
            stats.vanished.push(path);
            return;
          }
          stats.hashed++;
          stats.hashedBytes += r.size;
          // The size read is the size hashed: a file dovecot rewrote meanwhile is described as read.
          folder.setSize(i, r.size);
          folder.setHash(i, r.hash);
        },
        () => (pool ??= createHashPool(threads)),
      );
    }
  } finally {
    index.keepLoaded([]);
    await pool?.close();
  }
  return stats;
}

/** Files below one local folder; their manifest paths are `prefix/path` ('' for none). */
export interface HashSource {
  root: string;
  prefix: string;
  files: readonly { path: string; size: number; mtimeMs: number }[];
}

/**
 * Hashes a short list of files (the dump's, mail that arrived during the upload; the bench's
 * reference): entries whose size and mtime match `cache` reuse its hash.
 */
export async function hashFiles(sources: readonly HashSource[], cache: ReadonlyMap<string, CachedFile>, threads?: number): Promise<{ entries: Map<string, ManifestEntry>; stats: HashStats }> {
  const entries = new Map<string, ManifestEntry>();
  const stats: HashStats = { hashed: 0, hashedBytes: 0, reused: 0, vanished: [] };
  const todo: { root: string; path: string; file: HashSource['files'][number] }[] = [];
  for (const src of sources) {
    for (const f of src.files) {
      const path = src.prefix ? `${src.prefix}/${f.path}` : f.path;
      const c = cache.get(path);
      if (c && c.size === f.size && c.mtimeMs === f.mtimeMs) {
        entries.set(path, { path, hash: c.hash, size: f.size, mtimeMs: f.mtimeMs });
        stats.reused++;
      } else todo.push({ root: src.root, path, file: f });
    }
  }
  await hashEach(
    todo,
    (t) => ({ abs: join(t.root, t.file.path), size: t.file.size }),
    (t, r) => {
      if (!r) return void stats.vanished.push(t.path);
      stats.hashed++;
      stats.hashedBytes += r.size;
      entries.set(t.path, { path: t.path, hash: r.hash, size: r.size, mtimeMs: t.file.mtimeMs });
    },
    threads,
  );
  return { entries, stats };
}
