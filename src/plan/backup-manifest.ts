// The manifest of the backup being made: the dump's few files in a Map, the mail tree in its
// compact index. One object for the run's steps to ask (verify), correct (live mail) and write
// (parts, hash cache), so none of them needs a list of every file at once.
import { formatChecksumLine, manifestPartOf, type ManifestEntry } from './manifest.js';
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
   * The mail tree's manifest parts (see manifestPartOf), one at a time with its checksum lines in
   * the order `sort` puts them (manifestPartText): the order is found from binary hashes, so a
   * part's lines exist only one at a time (a folder of 132k messages was 28 MB of line strings at
   * once, the largest piece of a run at a million messages; its copy here is ~17 MB of buffers).
   */
  *parts(): Generator<[string, Iterable<string>]> {
    const v = this.vmail;
    if (!v) return;
    const byPart = new Map<string, Folder[]>();
    for (const f of v.folders) {
      const part = manifestPartOf(`${v.folderPath(f)}/x`, v.prefix)!;
      const list = byPart.get(part);
      if (list) list.push(f);
      else byPart.set(part, [f]);
    }
    for (const [part, folders] of byPart) {
      const sorted = new SortedPart(v, folders);
      if (sorted.order.length) yield [part, sorted.lines()];
    }
  }
}

/**
 * A part's lines in sort order, made from a copy of its entries (hashes and paths in two buffers):
 * reading them back through the folders would alternate between a part's folders in hash order,
 * and a spilled index would reload them at every turn.
 */
class SortedPart {
  private readonly hashes: Uint8Array;
  private readonly paths: Buffer;
  private readonly ends: Uint32Array;
  readonly order: Uint32Array;

  constructor(v: VmailIndex, folders: Folder[]) {
    let n = 0;
    let bytes = 0;
    for (const f of folders) {
      for (let i = 0; i < f.length; i++) {
        if (!v.inManifest(f, i)) continue;
        n++;
        bytes += Buffer.byteLength(v.pathOf(f, i));
      }
    }
    this.hashes = new Uint8Array(32 * n);
    this.paths = Buffer.allocUnsafe(bytes);
    this.ends = new Uint32Array(n);
    let k = 0;
    let end = 0;
    const escaped = new Set<number>();
    for (const f of folders) {
      for (let i = 0; i < f.length; i++) {
        if (!v.inManifest(f, i)) continue;
        const path = v.pathOf(f, i);
        if (/[\\\n\r]/.test(path)) escaped.add(k);
        this.hashes.set(f.hash.subarray(32 * i, 32 * i + 32), 32 * k);
        this.ends[k++] = end += this.paths.write(path, end);
      }
    }
    // Lines start with the hash in hex, which sorts like its bytes; lines coreutils escapes (a
    // backslash first) and equal hashes compare as text.
    const h = this.hashes;
    this.order = new Uint32Array(n).map((_, x) => x);
    this.order.sort((a, b) => {
      if (escaped.size === 0 || (!escaped.has(a) && !escaped.has(b))) {
        for (let o = 0; o < 32; o++) if (h[32 * a + o] !== h[32 * b + o]) return h[32 * a + o]! - h[32 * b + o]!;
      }
      const la = this.line(a);
      const lb = this.line(b);
      return la < lb ? -1 : la > lb ? 1 : 0;
    });
  }

  line(k: number): string {
    const hex = Buffer.from(this.hashes.buffer, this.hashes.byteOffset + 32 * k, 32).toString('hex');
    return formatChecksumLine(hex, this.paths.toString('utf8', k ? this.ends[k - 1]! : 0, this.ends[k]!));
  }

  *lines(): Generator<string> {
    for (const k of this.order) yield this.line(k);
  }
}
