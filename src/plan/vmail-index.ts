// The mail tree of one run, in memory, compact: one record per folder, a column per field.
// Why not a Map of entry objects: at 357k messages that was ~850 bytes a file and 400 MB of
// RSS (issue 4); here a file costs its name's UTF-8 bytes and a 4-byte offset, 16 bytes of size
// and mtime, 32 bytes of binary hash and a flag byte (~110 bytes a message, off the V8 heap).
// Past a budget the columns of folders not in use go to a ColumnStore (a file) and come back
// when asked for: a million messages would otherwise be ~110 MB (issue 19). Folders are kept in
// walk order, which is also the order of the local hash cache, so the previous manifest is merged
// folder by folder instead of loaded whole; every pass over the index goes folder by folder.
import type { ManifestEntry } from './manifest.js';

const HASHED = 1; // the hash column holds the file's hash
const GONE = 2; // not in the manifest (vanished before it was hashed, deleted before it was sent)
const KNOWN = 4; // the previous manifest had this path
const SEEN = 8; // the upload reported it (sent, linked or already there)
const SENT = 16; // its data crossed the wire in this run
const SAME = 32; // the previous backup holds it as it is (same path, size and mtime: hash reused)

/**
 * Walk order of folders: by path components, a folder before what it holds, siblings by name
 * (a depth-first walk visiting sorted names). '' is the volume root.
 */
export function compareFolders(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return -1;
  if (b === '') return 1;
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

export interface FileFacts {
  name: string;
  size: number;
  mtimeMs: number;
  uid: number;
  gid: number;
}

/**
 * Where a folder's columns go when the index outgrows its memory budget (issue 19: a million
 * messages would be ~110 MB here). Implemented in src/adapters/index-spill.ts: a file in the
 * run's 0700 folder. The index only asks it to keep and give back one folder's bytes.
 */
export interface ColumnStore {
  /** A folder's columns were loaded or made: the store may evict others (never `f`). */
  resident(f: Folder): void;
  /** Writes `bytes` (a folder's columns) and returns where; `slot`: its previous place. */
  put(bytes: Uint8Array, slot?: Slot): Slot;
  get(slot: Slot): Uint8Array;
  /** Never evicts `folders` (replacing the previous ones) until told otherwise. */
  keep(folders: readonly Folder[]): void;
  /** Bytes of columns it lets stay in memory. */
  readonly budget: number;
}
export interface Slot {
  offset: number;
  length: number;
}

/** One folder's columns in one buffer: size and mtime (f64), name ends (u32), hash, flags, names. */
class Columns {
  readonly size: Float64Array;
  readonly mtime: Float64Array;
  readonly nameEnd: Uint32Array;
  /** A Buffer view, so a hash is written and read as hex in place (Buffer.from per file made ~32 MB of pooled buffers at 1M files). */
  readonly hash: Buffer;
  readonly flags: Uint8Array;
  readonly nameBytes: Buffer;

  constructor(
    readonly bytes: Uint8Array,
    readonly n: number,
  ) {
    const b = bytes.buffer;
    let o = bytes.byteOffset;
    this.size = new Float64Array(b, o, n);
    this.mtime = new Float64Array(b, (o += 8 * n), n);
    this.nameEnd = new Uint32Array(b, (o += 8 * n), n);
    this.hash = Buffer.from(b, (o += 4 * n), 32 * n);
    this.flags = new Uint8Array(b, (o += 32 * n), n);
    o += n;
    this.nameBytes = Buffer.from(b, o, bytes.byteOffset + bytes.byteLength - o);
  }

  static byteLength(n: number, nameBytes: number): number {
    return 53 * n + nameBytes;
  }

  /** A fresh buffer (8-byte aligned for the f64 columns, off the V8 heap). */
  static alloc(n: number, nameBytes: number): Columns {
    return new Columns(new Uint8Array(Buffer.allocUnsafeSlow(Columns.byteLength(n, nameBytes)).buffer, 0, Columns.byteLength(n, nameBytes)).fill(0), n);
  }
}

/**
 * A folder's files as the walk lists them: columns rather than an object per file (at 127k files
 * in a folder, the objects were ~10 MB of heap garbage the walk left behind for every big folder).
 */
export interface Listing {
  /** Sorted as Array.prototype.sort() sorts strings (UTF-16 order, the order of `<`). */
  names: string[];
  size: number[];
  mtimeMs: number[];
  /** Files not owned like their folder: index → [uid, gid]. */
  owners: Map<number, [number, number]>;
}

function isListing(files: readonly FileFacts[] | Listing): files is Listing {
  return !Array.isArray(files);
}

function listingOf(files: readonly FileFacts[], uid: number, gid: number): Listing {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const owners = new Map<number, [number, number]>();
  sorted.forEach((f, i) => (f.uid !== uid || f.gid !== gid) && owners.set(i, [f.uid, f.gid]));
  return { names: sorted.map((f) => f.name), size: sorted.map((f) => f.size), mtimeMs: sorted.map((f) => f.mtimeMs), owners };
}

export class Folder {
  private cols?: Columns;
  /** Where the columns are in the store while not in memory; dirty: memory differs from it. */
  private slot?: Slot;
  private dirty = true;
  private store?: ColumnStore;
  private n: number;
  /** Files in the manifest without a hash: the hashing skips a folder with none without loading it. */
  private unhashedCount: number;
  /** Files not owned like their folder (rare): index → [uid, gid]. */
  owners: Map<number, [number, number]>;

  constructor(
    /** Relative to the volume root, '/'-separated; '' for the root. */
    readonly path: string,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    files: readonly FileFacts[] | Listing,
  ) {
    const l = isListing(files) ? files : listingOf(files, uid, gid);
    const n = (this.n = this.unhashedCount = l.names.length);
    let total = 0;
    for (const name of l.names) total += Buffer.byteLength(name);
    const c = (this.cols = Columns.alloc(n, total));
    let end = 0;
    for (let i = 0; i < n; i++) {
      end += c.nameBytes.write(l.names[i]!, end);
      c.nameEnd[i] = end;
      c.size[i] = l.size[i]!;
      c.mtime[i] = l.mtimeMs[i]!;
    }
    this.owners = l.owners;
  }

  /** From now on the columns may leave memory for `store` when the index needs the room. */
  attach(store: ColumnStore): void {
    this.store = store;
    if (this.cols) store.resident(this);
  }

  /** Bytes the columns take, in memory or in the store: known without loading them. */
  get bytes(): number {
    return this.cols?.bytes.byteLength ?? this.slot?.length ?? 0;
  }

  /** Bytes the columns take in memory now (0 when in the store). */
  get residentBytes(): number {
    return this.cols?.bytes.byteLength ?? 0;
  }

  /** Writes the columns to the store (if changed since) and lets go of them. */
  evict(): void {
    if (!this.cols || !this.store) return;
    if (this.dirty || !this.slot) this.slot = this.store.put(this.cols.bytes, this.slot);
    this.dirty = false;
    this.cols = undefined;
  }

  private c(): Columns {
    if (this.cols) return this.cols;
    const bytes = this.store!.get(this.slot!);
    this.cols = new Columns(bytes, this.n);
    this.dirty = false;
    this.store!.resident(this);
    return this.cols;
  }

  /**
   * For reading, right away: write through setSize, setHash, setFlags so a spilled folder stays
   * right, and never keep a column across a call that may load another folder (its memory may
   * then hold that folder's columns).
   */
  get size(): Float64Array {
    return this.c().size;
  }
  get mtime(): Float64Array {
    return this.c().mtime;
  }
  get hash(): Uint8Array {
    return this.c().hash;
  }
  get flags(): Uint8Array {
    return this.c().flags;
  }

  get length(): number {
    return this.n;
  }

  name(i: number): string {
    const c = this.c();
    return c.nameBytes.toString('utf8', i ? c.nameEnd[i - 1]! : 0, c.nameEnd[i]!);
  }

  indexOf(name: string): number {
    let lo = 0;
    let hi = this.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = this.name(mid);
      if (m === name) return mid;
      if (m < name) lo = mid + 1;
      else hi = mid - 1;
    }
    return -(lo + 1);
  }

  hashHex(i: number): string {
    return this.c().hash.toString('hex', 32 * i, 32 * i + 32);
  }

  setHash(i: number, hex: string): void {
    const c = this.c();
    c.hash.write(hex, 32 * i, 32, 'hex');
    this.writeFlags(c, i, (c.flags[i]! | HASHED) & ~GONE);
    this.dirty = true;
  }

  setSize(i: number, size: number, mtimeMs?: number): void {
    const c = this.c();
    c.size[i] = size;
    if (mtimeMs !== undefined) c.mtime[i] = mtimeMs;
    this.dirty = true;
  }

  /** How many files still need a hash (known without loading the columns). */
  get unhashed(): number {
    return this.unhashedCount;
  }

  private writeFlags(c: Columns, i: number, next: number): void {
    const unhashed = (f: number) => (f & (HASHED | GONE)) === 0;
    this.unhashedCount += +unhashed(next) - +unhashed(c.flags[i]!);
    c.flags[i] = next;
  }

  setFlags(i: number, set: number, clear = 0): void {
    const c = this.c();
    this.writeFlags(c, i, (c.flags[i]! | set) & ~clear);
    this.dirty = true;
  }

  /** Puts a file that appeared during the run in its place (columns copied: rare, small). */
  insertAt(at: number, f: FileFacts): void {
    const old = this.c();
    const n = this.n;
    const cut = at ? old.nameEnd[at - 1]! : 0;
    const add = Buffer.byteLength(f.name);
    const c = Columns.alloc(n + 1, old.nameBytes.length + add);
    const copy = (from: Float64Array | Uint32Array | Uint8Array, to: Float64Array | Uint32Array | Uint8Array, width: number) => {
      to.set(from.subarray(0, at * width), 0);
      to.set(from.subarray(at * width), (at + 1) * width);
    };
    copy(old.size, c.size, 1);
    copy(old.mtime, c.mtime, 1);
    copy(old.hash, c.hash, 32);
    copy(old.flags, c.flags, 1);
    old.nameBytes.copy(c.nameBytes, 0, 0, cut);
    c.nameBytes.write(f.name, cut);
    old.nameBytes.copy(c.nameBytes, cut + add, cut);
    c.nameEnd.set(old.nameEnd.subarray(0, at), 0);
    c.nameEnd[at] = cut + add;
    for (let k = at; k < n; k++) c.nameEnd[k + 1] = old.nameEnd[k]! + add;
    c.size[at] = f.size;
    c.mtime[at] = f.mtimeMs;
    this.cols = c;
    this.n = n + 1;
    this.unhashedCount++;
    this.dirty = true;
    const owners = new Map<number, [number, number]>();
    for (const [i, o] of this.owners) owners.set(i >= at ? i + 1 : i, o);
    if (f.uid !== this.uid || f.gid !== this.gid) owners.set(at, [f.uid, f.gid]);
    this.owners = owners;
    this.store?.resident(this);
  }
}

/** A file of the previous manifest: what the hash cache holds. */
export interface CachedFile {
  size: number;
  mtimeMs: number;
  hash: string;
}

/**
 * Merges one folder's previous entries into it without holding them: a cursor walks the
 * folder's sorted names as the entries come. A Map of a folder's previous entries (127k in the
 * largest at 1M messages) set the peak of every run after the first (issue 19).
 */
export class FolderReuse {
  reused = 0;
  private next = 0;
  private last = '';

  constructor(private readonly folder: Folder) {}

  /** Marks `name` as known and reuses its hash if size and mtime are unchanged; false: not in the folder (gone). */
  take(name: string, c: CachedFile): boolean {
    const f = this.folder;
    let i = -1;
    if (name > this.last) {
      while (this.next < f.length) {
        const here = f.name(this.next);
        if (here >= name) {
          if (here === name) i = this.next++;
          break;
        }
        this.next++;
      }
      this.last = name;
    } else i = f.indexOf(name);
    if (i < 0) return false;
    f.setFlags(i, KNOWN);
    if (c.size === f.size[i] && c.mtimeMs === f.mtime[i]) {
      f.setHash(i, c.hash);
      f.setFlags(i, SAME);
      this.reused++;
    }
    return true;
  }
}

export class VmailIndex {
  /** In walk order (compareFolders). */
  readonly folders: Folder[] = [];
  private readonly byPath = new Map<string, Folder>();

  /**
   * `prefix`: where the tree lands in the backup folder ('vmail'). `store`: where folders go
   * when the index outgrows its memory (none: all in memory).
   */
  constructor(
    readonly prefix: string,
    private readonly store?: ColumnStore,
  ) {}

  /** Appends a folder; the walk adds them in order. */
  add(folder: Folder): void {
    const last = this.folders[this.folders.length - 1];
    if (last && compareFolders(last.path, folder.path) >= 0) throw new Error(`folder ${folder.path} added out of walk order`);
    this.folders.push(folder);
    this.byPath.set(folder.path, folder);
    if (this.store) folder.attach(this.store);
  }

  /** Keeps `folders` in memory while a step goes back and forth between them ([]: none). */
  keepLoaded(folders: readonly Folder[]): void {
    this.store?.keep(folders);
  }

  /** Bytes of folder columns the index keeps in memory (unbounded without a store). */
  get memoryBudget(): number {
    return this.store?.budget ?? Infinity;
  }

  pathOf(folder: Folder, i: number): string {
    return folder.path ? `${this.prefix}/${folder.path}/${folder.name(i)}` : `${this.prefix}/${folder.name(i)}`;
  }

  /** Splits a manifest path into its folder record and file index (negative: not there). */
  private locate(path: string): { folder?: Folder; dir: string; name: string; i: number } {
    const rel = path.startsWith(`${this.prefix}/`) ? path.slice(this.prefix.length + 1) : undefined;
    if (rel === undefined) return { dir: '', name: '', i: -1 };
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    const folder = this.byPath.get(dir);
    return { folder, dir, name, i: folder ? folder.indexOf(name) : -1 };
  }

  owns(path: string): boolean {
    return path.startsWith(`${this.prefix}/`);
  }

  get(path: string): ManifestEntry | undefined {
    const { folder, i } = this.locate(path);
    if (!folder || i < 0 || folder.flags[i]! & GONE) return undefined;
    return { path, hash: folder.flags[i]! & HASHED ? folder.hashHex(i) : '', size: folder.size[i]!, mtimeMs: folder.mtime[i]! };
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  /** Records a file's entry; an empty hash means "on the box, hash not known yet". */
  set(path: string, e: { hash: string; size: number; mtimeMs: number }, owner?: { uid: number; gid: number }): void {
    let { folder, dir, name, i } = this.locate(path);
    if (!folder) {
      // A folder created during the run: into its place in walk order.
      const parent = this.byPath.get(dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '');
      folder = new Folder(dir, 0o700, owner?.uid ?? parent?.uid ?? 5000, owner?.gid ?? parent?.gid ?? 5000, []);
      let at = this.folders.length;
      while (at > 0 && compareFolders(this.folders[at - 1]!.path, dir) > 0) at--;
      this.folders.splice(at, 0, folder);
      this.byPath.set(dir, folder);
      if (this.store) folder.attach(this.store);
      i = -1;
    }
    if (i < 0) {
      i = -i - 1;
      folder.insertAt(i, { name, size: e.size, mtimeMs: e.mtimeMs, uid: owner?.uid ?? folder.uid, gid: owner?.gid ?? folder.gid });
    }
    folder.setSize(i, e.size, e.mtimeMs);
    folder.setFlags(i, 0, SAME);
    if (e.hash) folder.setHash(i, e.hash);
    else folder.setFlags(i, 0, HASHED | GONE);
  }

  delete(path: string): boolean {
    const { folder, i } = this.locate(path);
    if (!folder || i < 0 || folder.flags[i]! & GONE) return false;
    folder.setFlags(i, GONE);
    return true;
  }

  /** Every file in walk order that `pick` selects (default: those in the manifest). */
  *files(pick: (flags: number) => boolean = (f) => !(f & GONE)): Generator<{ folder: Folder; i: number }> {
    for (const folder of this.folders) for (let i = 0; i < folder.length; i++) if (pick(folder.flags[i]!)) yield { folder, i };
  }

  /** The manifest's entries: every file with a hash, in walk order. */
  *entries(): Generator<ManifestEntry> {
    for (const folder of this.folders) yield* this.entriesOf(folder);
  }

  /** Whether file i of `folder` is in the manifest (hashed, not gone). */
  inManifest(folder: Folder, i: number): boolean {
    return (folder.flags[i]! & (HASHED | GONE)) === HASHED;
  }

  *entriesOf(folder: Folder): Generator<ManifestEntry> {
    for (let i = 0; i < folder.length; i++) {
      if ((folder.flags[i]! & (HASHED | GONE)) !== HASHED) continue;
      yield { path: this.pathOf(folder, i), hash: folder.hashHex(i), size: folder.size[i]!, mtimeMs: folder.mtime[i]! };
    }
  }

  /** A folder's path in the backup folder: `vmail/example.com/alice/Maildir`. */
  folderPath(folder: Folder): string {
    return folder.path ? `${this.prefix}/${folder.path}` : this.prefix;
  }

  *paths(): Generator<string> {
    for (const { folder, i } of this.files()) yield this.pathOf(folder, i);
  }

  /** Files still to hash (not gone, no hash yet). */
  unhashed(): Generator<{ folder: Folder; i: number }> {
    return this.files((f) => (f & (HASHED | GONE)) === 0);
  }

  /** The files of `folder` that still need a hash (indexes into it); a folder with none is not loaded. */
  *unhashedIn(folder: Folder): Generator<number> {
    if (folder.unhashed === 0) return;
    for (let i = 0; i < folder.length; i++) if ((folder.flags[i]! & (HASHED | GONE)) === 0) yield i;
  }

  /** Paths new since the previous manifest, with their entries: candidates for a rename. */
  *added(): Generator<ManifestEntry> {
    for (const { folder, i } of this.files((f) => (f & (HASHED | GONE | KNOWN)) === HASHED)) {
      yield { path: this.pathOf(folder, i), hash: folder.hashHex(i), size: folder.size[i]!, mtimeMs: folder.mtime[i]! };
    }
  }

  /**
   * The upload reported `path` (`sent`: its data crossed the wire); false when the index does
   * not know it (delivered meanwhile).
   */
  markSeen(path: string, sent = false): boolean {
    const { folder, i } = this.locate(path);
    if (!folder || i < 0 || folder.flags[i]! & GONE) return false;
    folder.setFlags(i, sent ? SEEN | SENT : SEEN);
    return true;
  }

  wasSent(path: string): boolean {
    const { folder, i } = this.locate(path);
    return !!folder && i >= 0 && (folder.flags[i]! & SENT) !== 0;
  }

  /** Files in the manifest whose data the upload sent. */
  *sent(): Generator<string> {
    for (const { folder, i } of this.files((f) => (f & (GONE | SENT)) === SENT)) yield this.pathOf(folder, i);
  }

  /**
   * Files in the manifest the previous backup does not hold as they are (new, changed): what an
   * upload into a copy of the previous backup's tree must send. Relative to the volume.
   */
  *changedFiles(): Generator<string> {
    for (const { folder, i } of this.files((f) => (f & (GONE | SAME)) === 0)) yield folder.path ? `${folder.path}/${folder.name(i)}` : folder.name(i);
  }

  /** Marks every file the previous backup holds as it is as reported by the upload (not sent). */
  markSameSeen(): void {
    for (const { folder, i } of this.files((f) => (f & (GONE | SAME)) === SAME)) folder.setFlags(i, SEEN);
  }

  /** The folders below the root, relative to the volume, in walk order. */
  *folderNames(): Generator<string> {
    for (const f of this.folders) if (f.path !== '') yield f.path;
  }

  /** Files in the manifest that the upload never reported (deleted meanwhile). */
  *unseen(): Generator<string> {
    for (const { folder, i } of this.files((f) => (f & (GONE | SEEN)) === 0)) yield this.pathOf(folder, i);
  }

  totals(): { files: number; bytes: number } {
    let files = 0;
    let bytes = 0;
    for (const { folder, i } of this.files((f) => (f & (HASHED | GONE)) === HASHED)) (files++, (bytes += folder.size[i]!));
    return { files, bytes };
  }

  /** Folders below the root (what the record calls the tree's dirs). */
  get dirCount(): number {
    return this.folders.filter((f) => f.path !== '').length;
  }

  /** Most vmail files belong to one owner (uid/gid 5000): record it once, and the exceptions. */
  ownership(): { uid: number; gid: number; exceptions: { path: string; uid: number; gid: number }[] } {
    const counts = new Map<string, number>();
    const count = (uid: number, gid: number, n: number) => counts.set(`${uid}:${gid}`, (counts.get(`${uid}:${gid}`) ?? 0) + n);
    for (const f of this.folders) {
      if (f.path !== '') count(f.uid, f.gid, 1);
      count(f.uid, f.gid, f.length - f.owners.size);
      for (const [uid, gid] of f.owners.values()) count(uid, gid, 1);
    }
    let best = '5000:5000';
    let max = -1;
    for (const [k, n] of counts) if (n > max) [best, max] = [k, n];
    const [uid, gid] = best.split(':').map(Number) as [number, number];
    const exceptions: { path: string; uid: number; gid: number }[] = [];
    for (const f of this.folders) {
      if (exceptions.length >= 10_000) break;
      if (f.path !== '' && (f.uid !== uid || f.gid !== gid)) exceptions.push({ path: f.path, uid: f.uid, gid: f.gid });
      for (let i = 0; i < f.length && exceptions.length < 10_000; i++) {
        if (f.flags[i]! & GONE) continue;
        const [u, g] = f.owners.get(i) ?? [f.uid, f.gid];
        if (u !== uid || g !== gid) exceptions.push({ path: f.path ? `${f.path}/${f.name(i)}` : f.name(i), uid: u, gid: g });
      }
    }
    return { uid, gid, exceptions };
  }

  /** Folder modes that are not the usual 0700/0755, so restore can put them back. */
  dirModes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const f of this.folders) if (f.path !== '' && f.mode !== 0o700 && f.mode !== 0o755) out[f.path] = f.mode;
    return out;
  }
}
