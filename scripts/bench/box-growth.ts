// What a run added on the box, by kind: every inode of the new backup that no older backup
// shares (hard links counted once, as `du` does), attributed to folders, the manifest, the run
// record, the archives, and the vmail files — new, renamed (a path the previous backup lacks
// whose content it holds), or rewritten (a path the previous backup had with other content).
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest, RECORD_FILE } from '../../src/plan/manifest.js';

export interface Growth {
  dirs: { count: number; bytes: number };
  manifest: { count: number; bytes: number };
  record: { count: number; bytes: number };
  archives: { count: number; bytes: number };
  vmailNew: { count: number; bytes: number };
  vmailRenamed: { count: number; bytes: number };
  vmailRewritten: { count: number; bytes: number };
  other: { count: number; bytes: number };
  /** Files of the new backup that are hard links into an older one (cost nothing). */
  linked: number;
}

export const GROWTH_KINDS = ['dirs', 'manifest', 'record', 'archives', 'vmailNew', 'vmailRenamed', 'vmailRewritten', 'other'] as const;

async function walk(root: string, visit: (rel: string, st: Awaited<ReturnType<typeof lstat>>) => void, rel = ''): Promise<void> {
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    const st = await lstat(join(root, p));
    visit(p, st);
    if (st.isDirectory()) await walk(root, visit, p);
  }
}

const isManifest = (p: string) => p === 'checksums.sha256' || p.startsWith('manifest/');

export async function boxGrowth(boxFolder: string, name: string): Promise<Growth> {
  const others = (await readdir(boxFolder)).filter((n) => n !== name).sort();
  const prev = others.filter((n) => n < name && !n.startsWith('.')).pop();
  const seen = new Set<number>();
  for (const o of others) await walk(join(boxFolder, o), (_p, st) => seen.add(Number(st.ino)));
  const prevPaths = new Set<string>();
  if (prev) await walk(join(boxFolder, prev), (p, st) => st.isFile() && prevPaths.add(p));
  const prevHashes = new Set<string>();
  if (prev) await readManifest(join(boxFolder, prev), (e) => prevHashes.add(e.hash));
  const nowHash = new Map<string, string>();
  await readManifest(join(boxFolder, name), (e) => nowHash.set(e.path, e.hash));

  const z = () => ({ count: 0, bytes: 0 });
  const g: Growth = { dirs: z(), manifest: z(), record: z(), archives: z(), vmailNew: z(), vmailRenamed: z(), vmailRewritten: z(), other: z(), linked: 0 };
  await walk(join(boxFolder, name), (p, st) => {
    const ino = Number(st.ino);
    if (seen.has(ino)) {
      if (st.isFile()) g.linked++;
      return;
    }
    seen.add(ino);
    const bytes = Number(st.blocks) * 512;
    const kind: keyof Omit<Growth, 'linked'> = st.isDirectory()
      ? 'dirs'
      : isManifest(p)
        ? 'manifest'
        : p === RECORD_FILE
          ? 'record'
          : !p.includes('/')
            ? 'archives'
            : p.startsWith('vmail/')
              ? prevPaths.has(p)
                ? 'vmailRewritten'
                : prevHashes.has(nowHash.get(p) ?? '')
                  ? 'vmailRenamed'
                  : 'vmailNew'
              : 'other';
    g[kind].count++;
    g[kind].bytes += bytes;
  });
  return g;
}
