// The mail index's folders, spilled to a file in the run's 0700 folder once the index holds more
// than its budget in memory (issue 19: a million messages). Folders are loaded in the order the
// run's passes visit them (walk order), so the oldest loaded is the one to write out: a
// first-in-first-out list, no bookkeeping per file. The file dies with the run's folder.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import type { ColumnStore, Folder, Slot } from '../plan/vmail-index.js';
import { checkMemory } from './memory.js';

/**
 * Columns kept in memory besides the folder in use (a folder of 132k messages is 14 MB alone).
 * Measured at 1M messages: 8 MiB and 8 MiB kept for reuse peaked at 24 MB of array buffers,
 * 16 and 20 MiB at 48-74 MB, for no measurable difference in time.
 */
export const INDEX_MEMORY_BUDGET = 8 << 20;
/** Memory of evicted folders kept for reuse. */
const FREE_CAP = 8 << 20;

export class IndexSpillFile implements ColumnStore {
  private fd?: number;
  private end = 0;
  private readonly loaded = new Set<Folder>();
  /** Folders a step goes back and forth between (a manifest part's): never evicted. */
  private kept = new Set<Folder>();
  /**
   * Memory of evicted folders, for the next ones loaded (up to FREE_CAP bytes): a new buffer per
   * load (up to ~14 MB) is freed only at the next full collection, which a small heap rarely
   * needs, so several waited at once (measured at 1M messages: +20 MB of array buffers).
   */
  private free: ArrayBuffer[] = [];
  /** Bytes written, for the run's debug line. */
  written = 0;

  constructor(
    readonly file: string,
    private readonly budget = INDEX_MEMORY_BUDGET,
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
    // At offset 0 of its ArrayBuffer: the f64 columns need 8-byte alignment.
    let best = -1;
    this.free.forEach((f, k) => {
      if (f.byteLength >= slot.length && (best < 0 || f.byteLength < this.free[best]!.byteLength)) best = k;
    });
    if (best < 0) checkMemory();
    const buf = best >= 0 ? Buffer.from(this.free.splice(best, 1)[0]!, 0, slot.length) : Buffer.allocUnsafeSlow(slot.length);
    for (let done = 0; done < slot.length; ) {
      const n = readSync(this.fd!, buf, done, slot.length - done, slot.offset + done);
      if (n === 0) throw new Error(`the mail index's spill file ${this.file} ended early`);
      done += n;
    }
    return new Uint8Array(buf.buffer, 0, slot.length);
  }

  release(bytes: Uint8Array): void {
    if (bytes.byteOffset !== 0) return;
    this.free.push(bytes.buffer as ArrayBuffer);
    // The largest are kept: a small buffer fits few folders.
    this.free.sort((x, y) => y.byteLength - x.byteLength);
    let total = 0;
    this.free = this.free.filter((f) => (total += f.byteLength) <= FREE_CAP);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
