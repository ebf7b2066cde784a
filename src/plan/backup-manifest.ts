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
   * The mail tree's manifest parts (see manifestPartOf), one at a time with its checksum lines
   * (unsorted; see manifestPartText): only one part's lines exist at once however large the tree.
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
    for (const [part, folders] of byPart) {
      const lines: string[] = [];
      for (const f of folders) for (const e of v.entriesOf(f)) lines.push(formatChecksumLine(e.hash, e.path));
      if (lines.length) yield [part, lines];
    }
  }
}
