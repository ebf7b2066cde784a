// The SHA-256 of every regular file under a folder: how the demo and the tests show that mail
// came back byte for byte.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function sha256File(p: string): Promise<string> {
  return createHash('sha256').update(await readFile(p)).digest('hex');
}

/** Every regular file under root: relative path → sha256. */
export async function treeHashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const name of await readdir(join(root, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) out.set(p, await sha256File(join(root, p)));
    }
  };
  await walk('');
  return out;
}

/** One hash for a whole tree (its sorted `hash  path` lines): equal exactly when every file is. */
export function treeDigest(hashes: Map<string, string>): string {
  const lines = [...hashes].map(([p, h]) => `${h}  ${p}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
