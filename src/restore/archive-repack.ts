// The archives of a backup stored as trees (src/backup/archive-tree.ts) become mailcow's
// backup_<component>.tar.zst again, after the download matched the manifest and was decrypted:
// every consumer (mailcow's script, --download-only, the drill, the standby) meets the archive it
// always met. A backup of the old layout has no archives/*.tar.json and passes untouched.
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import { packArchive, readTreeList } from '../adapters/archive-tree.js';
import { UserError } from '../errors.js';
import { ARCHIVES_DIR, treeDir, treeListComponent } from '../plan/archive-tree.js';

/**
 * Packs each tree whose list is among `paths` (plaintext manifest paths, verified and present)
 * into `folder`, removing the tree and its list. Returns the archives written. zstd on every core
 * (threads 0) by default: a restore waits for it.
 */
export async function materializeArchives(exec: Exec, folder: string, paths: string[], threads = 0): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const component = treeListComponent(p);
    if (!component || p.endsWith('.age')) continue;
    let list;
    try {
      list = await readTreeList(join(folder, p));
    } catch (e) {
      throw new UserError('verify', `${p} cannot be read (${(e as Error).message}); nothing on this host was changed`);
    }
    await packArchive(exec, list, join(folder, treeDir(component)), join(folder, list.archive), threads);
    await rm(join(folder, treeDir(component)), { recursive: true, force: true });
    await rm(join(folder, p), { force: true });
    out.push(list.archive);
  }
  // Empty now unless a tree was not asked for.
  await rmdir(join(folder, ARCHIVES_DIR)).catch(() => undefined);
  return out;
}
