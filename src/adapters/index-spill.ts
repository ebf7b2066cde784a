// The mail index's folders, spilled to a file in the run's 0700 folder once the index holds more
// than its budget in memory (issue 19: a million messages). Folders are loaded in the order the
// run's passes visit them (walk order), so the oldest loaded is the one to write out: a
// first-in-first-out list, no bookkeeping per file. The file dies with the run's folder.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import type { ColumnStore, Folder, Slot } from '../plan/vmail-index.js';
import { checkMemory } from './memory.js';

/**
 * Columns kept in memory besides the folder in use (a folder of 132k messages is 14 MB alone).
 * Measured at 1M messages: 8 MiB (and 8 MiB of evicted buffers kept for reuse) peaked at 24 MB
 * of array buffers, 16 and 20 MiB at 48-74 MB, for no measurable difference in time.
 *
 * Evicted folders' buffers are not kept for reuse: with a collection asked for before each
 * load once 8 MiB of garbage is held (memory.ts), keeping them cost more than it saved
 * (1M messages, scripts/bench/walk-memory.ts --hash: the walk reading the cache 129-139 ->
 * 110-112 MB, run 1's hashing 134-135 -> 120-122 MB).
 */
export const INDEX_MEMORY_BUDGET = 8 << 20;

export class IndexSpillFile implements ColumnStore {
  private fd?: number;
  private end = 0;
  private readonly loaded = new Set<Folder>();
  /** Folders a step goes back and forth between (a manifest part's): never evicted. */
  private kept = new Set<Folder>();
  /** Bytes written and read back (tests: a pass over the index reads each folder once). */
  written = 0;
  read = 0;

  constructor(
    readonly file: string,
    readonly budget = INDEX_MEMORY_BUDGET,
  ) {}

  resident(f: Folder): void {
    this.loaded.delete(f);
    this.loaded.add(f);
    let total = 0;
    for (const g of this.loaded) total += g.residentBytes;
    for (const g of this.loaded) {
      if (total <= this.budget) break;
      if (g === f || this.kept.has(g)) continue;
      total -= g.residentBytes;
      g.evict();
      this.loaded.delete(g);
    }
  }

  keep(folders: readonly Folder[]): void {
    this.kept = new Set(folders);
  }

  put(bytes: Uint8Array, slot?: Slot): Slot {
    this.fd ??= openSync(this.file, 'w+', 0o600);
    const at = slot && slot.length === bytes.byteLength ? slot : { offset: this.end, length: bytes.byteLength };
    if (at.offset === this.end) this.end += at.length;
    for (let done = 0; done < at.length; ) done += writeSync(this.fd, bytes, done, at.length - done, at.offset + done);
    this.written += at.length;
    return at;
  }

  get(slot: Slot): Uint8Array {
    // A new buffer (up to ~14 MB) is garbage at its folder's eviction: collected before it adds up.
    checkMemory();
    // At offset 0 of its ArrayBuffer: the f64 columns need 8-byte alignment.
    const buf = Buffer.allocUnsafeSlow(slot.length);
    for (let done = 0; done < slot.length; ) {
      const n = readSync(this.fd!, buf, done, slot.length - done, slot.offset + done);
      if (n === 0) throw new Error(`the mail index's spill file ${this.file} ended early`);
      done += n;
    }
    this.read += slot.length;
    return new Uint8Array(buf.buffer, 0, slot.length);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
