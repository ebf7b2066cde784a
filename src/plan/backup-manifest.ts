// The manifest of the backup being made: the dump's few files in a Map, the mail tree in its
// compact index. One object for the run's steps to ask (verify), correct (live mail) and write
// (parts, hash cache), so none of them needs a list of every file at once.
import { formatChecksumLine, manifestPartOf, type ManifestEntry } from './manifest.js';
import { bucketBits, bucketOf, bucketPartName, escapedBucket } from './manifest-buckets.js';
import type { Folder, VmailIndex } from './vmail-index.js';

export class BackupManifest {
  constructor(
    /** Files outside the mail tree (the dump's archives, mailcow.conf), by path. */
    readonly other: Map<string, ManifestEntry>,
    readonly vmail?: VmailIndex,
  ) {}

  private inTree(path: string): VmailIndex | undefined {
    return this.vmail?.owns(path) ? this.vmail : undefined;
  }

  get(path: string): ManifestEntry | undefined {
    return this.inTree(path)?.get(path) ?? this.other.get(path);
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  set(path: string, e: { hash: string; size: number; mtimeMs: number }): void {
    const t = this.inTree(path);
    if (t) t.set(path, e);
    else this.other.set(path, { path, hash: e.hash, size: e.size, mtimeMs: e.mtimeMs });
  }

  delete(path: string): boolean {
    return this.inTree(path)?.delete(path) ?? this.other.delete(path);
  }

  /** Every file with a hash: the dump's first, then the mail tree in walk order. */
  *entries(): Generator<ManifestEntry> {
    for (const e of this.other.values()) if (e.hash) yield e;
    if (this.vmail) yield* this.vmail.entries();
  }

  *paths(): Generator<string> {
    yield* this.other.keys();
    if (this.vmail) yield* this.vmail.paths();
  }

  /** Files on the box whose hash is not known (arrived late and vanished before hashing). */
  *unhashed(): Generator<string> {
    for (const e of this.other.values()) if (!e.hash) yield e.path;
    if (this.vmail) for (const { folder, i } of this.vmail.unhashed()) yield this.vmail.pathOf(folder, i);
  }

  totals(): { files: number; bytes: number } {
    const t = this.vmail?.totals() ?? { files: 0, bytes: 0 };
    for (const e of this.other.values()) if (e.hash) (t.files++, (t.bytes += e.size));
    return t;
  }

  /** What checksums.sha256 lists itself: the files outside the mail tree. */
  top(): ManifestEntry[] {
    return [...this.other.values()].filter((e) => e.hash);
  }

  /**
   * The mail tree's manifest parts (see manifestPartOf), a big folder's split into buckets by hash
   * prefix (manifest-buckets.ts), one at a time with its checksum lines in the order `sort` puts
   * them (manifestPartText). The folder's entries are partitioned once into per-bucket lists of
   * indexes; each bucket's lines are then made from a copy of its own entries only (SortedBucket),
   * so the pass holds a bucket at a time, not a copy of the largest folder (~17 MB at 132k
   * messages, the peak of a run at a million). The part's folders stay loaded meanwhile: a bucket
   * takes entries from cur and new alike, and a spilled index would reload them at every turn.
   */
  *parts(): Generator<[string, string[]]> {
    const v = this.vmail;
    if (!v) return;
    const byPart = new Map<string, Folder[]>();
    for (const f of v.folders) {
      const part = manifestPartOf(`${v.folderPath(f)}/x`, v.prefix)!;
      const list = byPart.get(part);
      if (list) list.push(f);
      else byPart.set(part, [f]);
    }
    const sorter = new SortedBucket();
    try {
      for (const [part, folders] of byPart) {
        v.keepLoaded(folders);
        const split = new PartBuckets(v, folders);
        for (let k = 0; k < split.count; k++) {
          const lines = sorter.lines(v, folders, split.entries(k));
          if (lines.length) yield [bucketPartName(part, k, split.bits), lines];
        }
      }
    } finally {
      v.keepLoaded([]);
    }
  }
}

/**
 * A part's entries, as indexes into its folders taken end to end, grouped by bucket (stable: in
 * walk order within a bucket). 4 bytes per entry at rest, 12 while grouping.
 */
class PartBuckets {
  readonly bits: number;
  readonly count: number;
  private readonly order: Uint32Array;
  private readonly starts: Uint32Array;

  constructor(v: VmailIndex, folders: Folder[]) {
    let n = 0;
    for (const f of folders) for (let i = 0; i < f.length; i++) if (v.inManifest(f, i)) n++;
    this.bits = bucketBits(n);
    this.count = 2 ** this.bits;
    const at = new Uint32Array(n);
    const bucket = new Uint32Array(n);
    this.starts = new Uint32Array(this.count + 1);
    let m = 0;
    let base = 0;
    for (const f of folders) {
      for (let i = 0; i < f.length; i++) {
        if (!v.inManifest(f, i)) continue;
        const h = f.hash;
        const k = this.bits === 0 ? 0 : needsEscape(v.pathOf(f, i)) ? escapedBucket(this.bits) : bucketOf(((h[32 * i]! << 24) | (h[32 * i + 1]! << 16) | (h[32 * i + 2]! << 8) | h[32 * i + 3]!) >>> 0, this.bits);
        at[m] = base + i;
        bucket[m++] = k;
        this.starts[k + 1]!++;
      }
      base += f.length;
    }
    for (let k = 0; k < this.count; k++) this.starts[k + 1]! += this.starts[k]!;
    this.order = new Uint32Array(n);
    const next = this.starts.slice(0, this.count);
    for (let j = 0; j < n; j++) this.order[next[bucket[j]!]!++] = at[j]!;
  }

  /** Bucket k's entries: indexes into the part's folders end to end, ascending. */
  entries(k: number): Uint32Array {
    return this.order.subarray(this.starts[k], this.starts[k + 1]);
  }
}

const needsEscape = (path: string) => /[\\\n\r]/.test(path);

/**
 * A bucket's lines in sort order, made from a copy of its entries (hashes and paths in buffers
 * reused from bucket to bucket): the order is found on the binary hashes (hex sorts like its
 * bytes), lines coreutils escapes (a backslash first) and equal hashes compare as text.
 */
class SortedBucket {
  private hashes = new Uint8Array(0);
  private paths = Buffer.alloc(0);
  private ends = new Uint32Array(0);
  private escaped = new Uint8Array(0);

  lines(v: VmailIndex, folders: Folder[], entries: Uint32Array): string[] {
    const n = entries.length;
    if (this.ends.length < n) (this.ends = new Uint32Array(n)), (this.escaped = new Uint8Array(n)), (this.hashes = new Uint8Array(32 * n));
    let end = 0;
    let f = 0;
    let base = 0;
    let anyEscaped = false;
    for (let k = 0; k < n; k++) {
      while (entries[k]! >= base + folders[f]!.length) base += folders[f++]!.length;
      const folder = folders[f]!;
      const i = entries[k]! - base;
      const path = v.pathOf(folder, i);
      const bytes = Buffer.byteLength(path);
      if (end + bytes > this.paths.length) {
        const grown = Buffer.allocUnsafe(Math.max(2 * this.paths.length, end + bytes, 64 << 10));
        this.paths.copy(grown, 0, 0, end);
        this.paths = grown;
      }
      this.escaped[k] = needsEscape(path) ? 1 : 0;
      if (this.escaped[k]) anyEscaped = true;
      this.hashes.set(folder.hash.subarray(32 * i, 32 * i + 32), 32 * k);
      this.ends[k] = end += this.paths.write(path, end);
    }
    const h = this.hashes;
    const order = Array.from({ length: n }, (_, x) => x);
    order.sort((a, b) => {
      if (!anyEscaped || (!this.escaped[a] && !this.escaped[b])) {
        for (let o = 0; o < 32; o++) if (h[32 * a + o] !== h[32 * b + o]) return h[32 * a + o]! - h[32 * b + o]!;
      }
      const la = this.line(a);
      const lb = this.line(b);
      return la < lb ? -1 : la > lb ? 1 : 0;
    });
    return order.map((k) => this.line(k));
  }

  private line(k: number): string {
    const hex = Buffer.from(this.hashes.buffer, this.hashes.byteOffset + 32 * k, 32).toString('hex');
    return formatChecksumLine(hex, this.paths.toString('utf8', k ? this.ends[k - 1]! : 0, this.ends[k]!));
  }
}
