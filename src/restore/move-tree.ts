// Puts a verified vmail tree into the volume by renaming instead of copying: on a failover the
// restore folder already holds the only copy that needs to exist, and writing all of the mail a
// second time is most of what (c) spends beyond mailcow's own script. The volume's previous
// entries are renamed aside first, so the volume ends up exactly the tree (as `rsync --delete`
// left it) and every rename can be undone if one fails. Different filesystems cannot rename:
// the caller copies as before.
import { chmod, mkdir, readdir, rename, rmdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';

export interface MovedTree {
  /** Entries renamed (the tree's into the volume, the volume's previous ones aside). */
  entries: number;
  /** Puts everything back where it was: the tree in its folder, the previous content in the volume. */
  undo: () => Promise<void>;
}

/**
 * Moves the entries of `tree` into `vol`, the volume's own entries into `aside` (a new folder on
 * the tree's filesystem). Undefined when nothing was moved because the two are on different
 * filesystems (or different mounts of one: rename says EXDEV).
 */
export async function moveTreeInto(tree: string, vol: string, aside: string): Promise<MovedTree | undefined> {
  const [t, v] = await Promise.all([stat(tree), stat(vol)]);
  if (t.dev !== v.dev) return undefined;
  // Left by a restore killed mid-move, it holds the volume's previous content: never deleted here.
  await rmdir(aside).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw new UserError('failed', `${aside} is left from an interrupted restore and may hold the vmail volume's previous content: move what you want to keep into ${vol}, delete ${aside}, then run the restore again`);
  });
  await mkdir(aside, { mode: 0o700 });
  const done: { from: string; to: string }[] = [];
  const undo = async () => {
    for (const m of done.splice(0).reverse()) await rename(m.to, m.from);
    await chmod(vol, v.mode & 0o7777);
    await utimes(vol, v.atime, v.mtime);
    await rmdir(aside);
  };
  const move = async (from: string, to: string) => {
    await rename(from, to);
    done.push({ from, to });
  };
  try {
    for (const n of await readdir(vol)) await move(join(vol, n), join(aside, n));
    for (const n of await readdir(tree)) await move(join(tree, n), join(vol, n));
    // What rsync -pt did to the destination folder itself.
    await chmod(vol, t.mode & 0o7777);
    await utimes(vol, t.atime, t.mtime);
  } catch (e) {
    const crossDevice = (e as NodeJS.ErrnoException).code === 'EXDEV' && done.length === 0;
    await undo();
    if (crossDevice) return undefined;
    throw e;
  }
  return { entries: done.length, undo };
}
