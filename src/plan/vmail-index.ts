// The mail tree of one run, in memory, compact: one record per folder, a column per field.
// Why not a Map of entry objects: at 357k messages that was ~850 bytes a file and 400 MB of
// RSS (issue 4); here a file costs its name's UTF-8 bytes and a 4-byte offset, 16 bytes of size
// and mtime, 32 bytes of binary hash and a flag byte (~110 bytes a message, off the V8 heap). Folders are kept in walk order, which is also the order of the
// local hash cache, so the previous manifest is merged folder by folder instead of loaded whole.
import type { ManifestEntry } from './manifest.js';

const HASHED = 1; // the hash column holds the file's hash
const GONE = 2; // not in the manifest (vanished before it was hashed, deleted before it was sent)
const KNOWN = 4; // the previous manifest had this path
const SEEN = 8; // the upload reported it (sent, linked or already there)
const SENT = 16; // its data crossed the wire in this run

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

export class Folder {
  /** The names, UTF-8, one after another: name i ends at nameEnd[i] (off the V8 heap, no string each). */
  private nameBytes: Buffer;
  private nameEnd: Uint32Array;
  size: Float64Array;
  mtime: Float64Array;
  hash: Uint8Array;
  flags: Uint8Array;
  /** Files not owned like their folder (rare): index → [uid, gid]. */
  owners = new Map<number, [number, number]>();

  constructor(
    /** Relative to the volume root, '/'-separated; '' for the root. */
    readonly path: string,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    files: readonly FileFacts[],
  ) {
    const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const n = sorted.length;
    this.nameEnd = new Uint32Array(n);
    let total = 0;
    sorted.forEach((f, i) => (this.nameEnd[i] = total += Buffer.byteLength(f.name)));
    this.nameBytes = Buffer.allocUnsafeSlow(total);
    sorted.forEach((f, i) => this.nameBytes.write(f.name, i ? this.nameEnd[i - 1]! : 0));
    this.size = new Float64Array(n);
    this.mtime = new Float64Array(n);
    this.hash = new Uint8Array(32 * n);
    this.flags = new Uint8Array(n);
    sorted.forEach((f, i) => {
      this.size[i] = f.size;
      this.mtime[i] = f.mtimeMs;
      if (f.uid !== uid || f.gid !== gid) this.owners.set(i, [f.uid, f.gid]);
    });
  }

  get length(): number {
    return this.nameEnd.length;
  }

  name(i: number): string {
    return this.nameBytes.toString('utf8', i ? this.nameEnd[i - 1]! : 0, this.nameEnd[i]!);
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
    return Buffer.from(this.hash.buffer, this.hash.byteOffset + 32 * i, 32).toString('hex');
  }

  setHash(i: number, hex: string): void {
    this.hash.set(Buffer.from(hex, 'hex'), 32 * i);
    this.flags[i] = (this.flags[i]! | HASHED) & ~GONE;
  }

  /** Puts a file that appeared during the run in its place (columns copied: rare, small). */
  insertAt(at: number, f: FileFacts): void {
    const n = this.length;
    const grow = <T extends Float64Array | Uint8Array>(a: T, width: number, make: (n: number) => T): T => {
      const b = make((n + 1) * width);
      b.set(a.subarray(0, at * width), 0);
      b.set(a.subarray(at * width), (at + 1) * width);
      return b;
    };
    const cut = at ? this.nameEnd[at - 1]! : 0;
    const add = Buffer.byteLength(f.name);
    this.nameBytes = Buffer.concat([this.nameBytes.subarray(0, cut), Buffer.from(f.name), this.nameBytes.subarray(cut)]);
    const ends = new Uint32Array(n + 1);
    ends.set(this.nameEnd.subarray(0, at), 0);
    ends[at] = cut + add;
    for (let k = at; k < n; k++) ends[k + 1] = this.nameEnd[k]! + add;
    this.nameEnd = ends;
    this.size = grow(this.size, 1, (k) => new Float64Array(k));
    this.mtime = grow(this.mtime, 1, (k) => new Float64Array(k));
    this.hash = grow(this.hash, 32, (k) => new Uint8Array(k));
    this.flags = grow(this.flags, 1, (k) => new Uint8Array(k));
    this.size[at] = f.size;
    this.mtime[at] = f.mtimeMs;
    this.hash.fill(0, 32 * at, 32 * at + 32);
    this.flags[at] = 0;
    const owners = new Map<number, [number, number]>();
    for (const [i, o] of this.owners) owners.set(i >= at ? i + 1 : i, o);
    if (f.uid !== this.uid || f.gid !== this.gid) owners.set(at, [f.uid, f.gid]);
    this.owners = owners;
  }
}

/** A file of the previous manifest: what the hash cache holds. */
export interface CachedFile {
  size: number;
  mtimeMs: number;
  hash: string;
}

export class VmailIndex {
  /** In walk order (compareFolders). */
  readonly folders: Folder[] = [];
  private readonly byPath = new Map<string, Folder>();

  /** `prefix`: where the tree lands in the backup folder ('vmail'). */
  constructor(readonly prefix: string) {}

  /** Appends a folder; the walk adds them in order. */
  add(folder: Folder): void {
    const last = this.folders[this.folders.length - 1];
    if (last && compareFolders(last.path, folder.path) >= 0) throw new Error(`folder ${folder.path} added out of walk order`);
    this.folders.push(folder);
    this.byPath.set(folder.path, folder);
  }

  /**
   * Takes the previous manifest's entries for `folder`: reuses the hash of every file whose
   * size and mtime are unchanged, marks the paths it had, and removes them from `cached` (what
   * is left there is gone). Returns how many hashes it reused.
   */
  static reuse(folder: Folder, cached: Map<string, CachedFile>): number {
    let reused = 0;
    for (let i = 0; i < folder.length; i++) {
      const name = folder.name(i);
      const c = cached.get(name);
      if (!c) continue;
      cached.delete(name);
      folder.flags[i]! |= KNOWN;
      if (c.size === folder.size[i] && c.mtimeMs === folder.mtime[i]) {
        folder.setHash(i, c.hash);
        reused++;
      }
    }
    return reused;
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
      i = -1;
    }
    if (i < 0) {
      i = -i - 1;
      folder.insertAt(i, { name, size: e.size, mtimeMs: e.mtimeMs, uid: owner?.uid ?? folder.uid, gid: owner?.gid ?? folder.gid });
    }
    folder.size[i] = e.size;
    folder.mtime[i] = e.mtimeMs;
    if (e.hash) folder.setHash(i, e.hash);
    else folder.flags[i] = folder.flags[i]! & ~(HASHED | GONE);
  }

  delete(path: string): boolean {
    const { folder, i } = this.locate(path);
    if (!folder || i < 0 || folder.flags[i]! & GONE) return false;
    folder.flags[i]! |= GONE;
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
    folder.flags[i]! |= sent ? SEEN | SENT : SEEN;
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
