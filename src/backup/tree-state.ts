// Which backup the local hash cache describes, and that backup's mail folders. A run may build
// the new backup's mail tree as a hard-link copy of the newest backup's and send only what the
// index calls changed only when the cache describes exactly that backup: otherwise "unchanged"
// would be judged against a tree that is not the one copied.
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config/schema.js';

const TreeState = z.object({ backup: z.string().min(1), root: z.string().min(1), volume: z.string().min(1), dirs: z.array(z.string()) });
export type TreeState = z.infer<typeof TreeState>;

const treeStatePath = (c: Pick<Config, 'STATE_DIR'>) => join(c.STATE_DIR, 'hash-cache.tree.json');

/** Missing, unreadable or from an older version: undefined (the run then uploads the whole tree). */
export async function readTreeState(c: Pick<Config, 'STATE_DIR'>): Promise<TreeState | undefined> {
  try {
    const r = TreeState.safeParse(JSON.parse(await readFile(treeStatePath(c), 'utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Before the cache is rewritten: a cache without its matching state is never trusted. */
export async function forgetTreeState(c: Pick<Config, 'STATE_DIR'>): Promise<void> {
  await rm(treeStatePath(c), { force: true });
}

export async function saveTreeState(c: Pick<Config, 'STATE_DIR'>, s: TreeState): Promise<void> {
  const file = treeStatePath(c);
  await writeFile(`${file}.tmp`, JSON.stringify(s) + '\n', { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
