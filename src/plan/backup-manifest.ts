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
   * the order `sort` puts them (manifestPartText): the order is found from the index's binary
   * hashes, so a part's lines exist only one at a time (a folder of 132k messages was 28 MB of
   * lines at once, the largest piece of a run at a million messages).
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
      const order = sortedPart(v, folders);
      if (order.length) yield [part, linesOf(v, folders, order)];
    }
  }
}

/** Entry k of a part: file `k % FILES` of folder `floor(k / FILES)` of its list (exact in a double). */
const FILES = 2 ** 32;
const at = (folders: Folder[], k: number) => ({ f: folders[Math.floor(k / FILES)]!, i: k % FILES });

/**
 * The part's entries sorted as their checksum lines sort: a line starts with the hash in hex,
 * so binary hashes compare alike (copied into one buffer: the comparison is a byte loop, no
 * getter or object per call); lines coreutils escapes (a backslash first) and equal hashes
 * compare as text.
 */
function sortedPart(v: VmailIndex, folders: Folder[]): Float64Array {
  let n = 0;
  for (const f of folders) for (let i = 0; i < f.length; i++) if (v.inManifest(f, i)) n++;
  const keys = new Float64Array(n);
  const hashes = new Uint8Array(32 * n);
  const escaped = new Set<number>();
  n = 0;
  folders.forEach((f, fi) => {
    for (let i = 0; i < f.length; i++) {
      if (!v.inManifest(f, i)) continue;
      if (/[\\\n\r]/.test(v.pathOf(f, i))) escaped.add(n);
      hashes.set(f.hash.subarray(32 * i, 32 * i + 32), 32 * n);
      keys[n++] = fi * FILES + i;
    }
  });
  const line = (k: number) => {
    const { f, i } = at(folders, keys[k]!);
    return formatChecksumLine(f.hashHex(i), v.pathOf(f, i));
  };
  const order = new Uint32Array(n).map((_, k) => k);
  order.sort((a, b) => {
    if (escaped.size === 0 || (!escaped.has(a) && !escaped.has(b))) {
      for (let o = 0; o < 32; o++) if (hashes[32 * a + o] !== hashes[32 * b + o]) return hashes[32 * a + o]! - hashes[32 * b + o]!;
    }
    const la = line(a);
    const lb = line(b);
    return la < lb ? -1 : la > lb ? 1 : 0;
  });
  return Float64Array.from(order, (k) => keys[k]!);
}

function* linesOf(v: VmailIndex, folders: Folder[], order: Float64Array): Generator<string> {
  for (const k of order) {
    const { f, i } = at(folders, k);
    yield formatChecksumLine(f.hashHex(i), v.pathOf(f, i));
  }
}
