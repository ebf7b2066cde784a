// The mail index's folders, spilled to a file in the run's 0700 folder once the index holds more
// than its budget in memory (issue 19: a million messages). Folders are loaded in the order the
// run's passes visit them (walk order), so the oldest loaded is the one to write out: a
// first-in-first-out list, no bookkeeping per file. The file dies with the run's folder.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import type { ColumnStore, Folder, Slot } from '../plan/vmail-index.js';

/** Columns kept in memory: the largest folders seen (~170k messages) are ~18 MB alone. */
export const INDEX_MEMORY_BUDGET = 16 << 20;

export class IndexSpillFile implements ColumnStore {
  private fd?: number;
  private end = 0;
  private readonly loaded = new Set<Folder>();
  /**
   * The memory of the last folder evicted, for the next one loaded: without it every load is a
   * new buffer of up to ~18 MB and several wait for the garbage collector at once (measured at
   * 1M messages: +50 MB RSS).
   */
  private spare?: ArrayBuffer;
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
      if (g === f) continue;
      total -= g.residentBytes;
      g.evict();
      this.loaded.delete(g);
    }
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
    const spare = this.spare && this.spare.byteLength >= slot.length ? this.spare : undefined;
    if (spare) this.spare = undefined;
    const buf = spare ? Buffer.from(spare, 0, slot.length) : Buffer.allocUnsafeSlow(slot.length);
    for (let done = 0; done < slot.length; ) {
      const n = readSync(this.fd!, buf, done, slot.length - done, slot.offset + done);
      if (n === 0) throw new Error(`the mail index's spill file ${this.file} ended early`);
      done += n;
    }
    return new Uint8Array(buf.buffer, 0, slot.length);
  }

  release(bytes: Uint8Array): void {
    if (bytes.byteOffset === 0 && (!this.spare || this.spare.byteLength < bytes.buffer.byteLength)) this.spare = bytes.buffer as ArrayBuffer;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
