// After mailcow's script: each archive of the dump becomes archives/<component>/ (its files) and
// archives/<component>.tar.json (its entries), and the archive itself leaves the upload. mariabackup
// and redis write every file afresh each dump, so rsync's quick check (size and time) would never
// take yesterday's copy; a file whose path, size and SHA-256 equal the previous backup's is given
// that backup's time here, and --link-dest then stores it as a hard link. Its true time is in the
// entry list, which is what the archive gets again on a restore.
import { rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { unpackArchive } from '../adapters/archive-tree.js';
import type { DumpResult } from '../adapters/mailcow.js';
import { treeDir, treeListPath } from '../plan/archive-tree.js';
import type { ManifestEntry } from '../plan/manifest.js';
import type { CachedFile } from '../plan/vmail-index.js';
import type { RunContext } from './context.js';

export interface UnpackedDump {
  /** Components stored as trees. */
  trees: string[];
  /** Per tree, the bytes of its files unpacked (what extracting the archive takes on disk). */
  rawBytes: Map<string, number>;
  /** The trees' files, hashed while they were written (manifest paths). */
  files: Map<string, ManifestEntry>;
  /** Files given the previous backup's time (unchanged since). */
  unchanged: number;
}

export async function unpackDump(ctx: RunContext, folder: string, archives: DumpResult['archives'], previous: ReadonlyMap<string, CachedFile>): Promise<UnpackedDump> {
  const out: UnpackedDump = { trees: [], rawBytes: new Map(), files: new Map(), unchanged: 0 };
  for (const a of archives) {
    // .tar.gz is what mailcow wrote before zstd; such an archive stays whole.
    if (!a.file.endsWith('.tar.zst')) continue;
    const dir = treeDir(a.component);
    const r = await unpackArchive(a.file, join(folder, dir), join(folder, treeListPath(a.component)), a.component);
    if (r.problem) {
      ctx.log.warn(`${a.file.split('/').pop()} stays whole in this backup: ${r.problem}`);
      continue;
    }
    for (const f of r.files) {
      const path = `${dir}/${f.rel}`;
      const abs = join(folder, path);
      const prev = previous.get(path);
      let mtimeMs: number;
      if (prev && prev.size === f.size && prev.hash === f.hash && prev.mtimeMs >= 0) {
        await utimes(abs, prev.mtimeMs / 1000, prev.mtimeMs / 1000);
        mtimeMs = prev.mtimeMs;
        out.unchanged++;
      } else {
        mtimeMs = Math.floor((await stat(abs)).mtimeMs);
        // Changed content under yesterday's size and time would pass rsync's quick check as unchanged.
        if (prev && prev.size === f.size && prev.mtimeMs === mtimeMs) await utimes(abs, (mtimeMs = prev.mtimeMs + 1000) / 1000, mtimeMs / 1000);
      }
      out.files.set(path, { path, hash: f.hash, size: f.size, mtimeMs });
    }
    await rm(a.file);
    out.trees.push(a.component);
    out.rawBytes.set(a.component, r.rawBytes);
  }
  if (out.trees.length) ctx.log.info(`archives stored as trees: ${out.trees.join(', ')} (${out.files.size} files, ${out.unchanged} unchanged since the previous backup)`);
  return out;
}
