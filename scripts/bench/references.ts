// References measured on the same files in the same run: the change itself, the bash tool's
// ways (full re-send, one sha256sum per file), sha256sum in one process, rsync of mailcow's
// vmail archive against yesterday's, and the tool's hashing function called directly.
import { copyFile, lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashIndex, walkTree } from '../../src/backup/manifest-step.js';
import { run, timed } from './exec.js';

export interface FileInfo {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Every regular file below the folders, keyed "<folder>/<relative path>". */
export async function snapshot(dirs: string[]): Promise<Map<string, FileInfo>> {
  const out = new Map<string, FileInfo>();
  const walk = async (root: string, rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(root, p);
      else if (e.isFile()) {
        const st = await lstat(join(root, p));
        out.set(`${root}/${p}`, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
      }
    }
  };
  for (const d of dirs) await walk(d, '');
  return out;
}

export interface Change {
  newMessages: number;
  newMessageBytes: number;
  renamedMessages: number;
  renamedBytes: number;
  deletedMessages: number;
  deletedBytes: number;
  rewrittenFiles: number;
  rewrittenBytes: number;
  /** Of the rewritten files, bytes actually overwritten (databases, redis), as the fixture reports. */
  rewrittenChangedBytes?: number;
}

const baseOf = (p: string): string | undefined => {
  const m = /\/(cur|new)\/([^/]+)$/.exec(p);
  if (!m) return undefined;
  const name = m[2]!;
  const i = name.indexOf(':2,');
  return `${p.slice(0, p.length - name.length - m[1]!.length - 1)}|${i < 0 ? name : name.slice(0, i)}`;
};

export function classify(before: Map<string, FileInfo>, after: Map<string, FileInfo>): Change {
  const c: Change = { newMessages: 0, newMessageBytes: 0, renamedMessages: 0, renamedBytes: 0, deletedMessages: 0, deletedBytes: 0, rewrittenFiles: 0, rewrittenBytes: 0 };
  const goneBases = new Map<string, FileInfo>();
  for (const [p, f] of before) if (!after.has(p)) { const b = baseOf(p); if (b) goneBases.set(b, f); }
  const renamedBases = new Set<string>();
  for (const [p, f] of after) {
    const old = before.get(p);
    if (old) {
      if (old.size !== f.size || old.mtimeMs !== f.mtimeMs || old.ino !== f.ino) {
        c.rewrittenFiles++;
        c.rewrittenBytes += f.size;
      }
      continue;
    }
    const b = baseOf(p);
    if (b && goneBases.has(b)) {
      c.renamedMessages++;
      c.renamedBytes += f.size;
      renamedBases.add(b);
    } else {
      c.newMessages++;
      c.newMessageBytes += f.size;
    }
  }
  for (const [b, f] of goneBases) if (!renamedBases.has(b)) { c.deletedMessages++; c.deletedBytes += f.size; }
  return c;
}

/** mailcow's vmail archive, made as its script makes it (tar | zstd --rsyncable). */
export async function vmailArchive(vmail: string, out: string, threads: number) {
  await rm(out, { force: true });
  const t = await timed('tar', ['--use-compress-program', `zstd --rsyncable -T${threads}`, '-cpf', out, '-C', vmail, '.']);
  return { bytes: (await stat(out)).size, wallS: t.wallS, cpuS: t.userS + t.sysS };
}

/** rsync's delta transfer of today's archive over yesterday's (as the bash tool could have sent it). */
export async function rsyncArchiveDelta(yesterday: string, today: string, work: string) {
  const target = join(work, 'rsync-target');
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  await copyFile(yesterday, join(target, 'backup_vmail.tar.zst'));
  const r = await run('rsync', ['--no-whole-file', '--stats', '-t', today, join(target, 'backup_vmail.tar.zst')]);
  const sent = Number(/Total bytes sent: ([\d,.]+)/.exec(r.stdout)?.[1]?.replace(/[,.]/g, '') ?? NaN);
  const literal = Number(/Literal data: ([\d,.]+)/.exec(r.stdout)?.[1]?.replace(/[,.]/g, '') ?? NaN);
  await rm(target, { recursive: true, force: true });
  return { bytesSent: sent, literalBytes: literal, archiveBytes: (await stat(today)).size };
}

export interface HashRefs {
  files: number;
  bytes: number;
  sha256sumOneProcess: { wallS: number; cpuS: number };
  sha256sumPerFile: { sampleFiles: number; sampleWallS: number; extrapolatedWallS: number; extrapolatedCpuS: number };
  hashIndexDefault: { wallS: number; cpuS: number; threads: string };
  hashIndexOneThread: { wallS: number; cpuS: number };
}

/** sha256sum over the same files vs the tool's hashing of the mail (page cache warm for all: read once first). */
export async function hashReferences(vmail: string, work: string, sampleSize = 2000): Promise<HashRefs> {
  const snap = await snapshot([vmail]);
  const paths = [...snap.keys()].sort();
  const bytes = [...snap.values()].reduce((a, f) => a + f.size, 0);
  const listFile = join(work, 'hash-list.bin');
  await writeFile(listFile, paths.join('\0') + '\0');
  await run('sh', ['-c', 'xargs -0 cat < "$0" > /dev/null', listFile]); // warm the page cache
  const one = await timed('sh', ['-c', 'xargs -0 -P1 sha256sum < "$0" > /dev/null', listFile]);
  const step = Math.max(1, Math.floor(paths.length / sampleSize));
  const sample = paths.filter((_, i) => i % step === 0).slice(0, sampleSize);
  const sampleFile = join(work, 'hash-sample.bin');
  await writeFile(sampleFile, sample.join('\0') + '\0');
  const per = await timed('sh', ['-c', 'xargs -0 -n1 sha256sum < "$0" > /dev/null', sampleFile]);
  const k = paths.length / sample.length;
  // What the run does with the mail: the walk lists it (not timed: sha256sum is given its list
  // too), then hashIndex hashes every file of the index.
  const direct = async (threads?: number) => {
    const { index } = await walkTree(vmail, 'vmail');
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const stats = await hashIndex(index, vmail, threads);
    const c = process.cpuUsage(c0);
    if (stats.hashed !== paths.length) throw new Error(`hashIndex hashed ${stats.hashed} of ${paths.length} files`);
    return { wallS: (performance.now() - t0) / 1000, cpuS: (c.user + c.system) / 1e6 };
  };
  const def = await direct();
  const single = await direct(1);
  await rm(listFile, { force: true });
  await rm(sampleFile, { force: true });
  return {
    files: paths.length,
    bytes,
    sha256sumOneProcess: { wallS: one.wallS, cpuS: one.userS + one.sysS },
    sha256sumPerFile: { sampleFiles: sample.length, sampleWallS: per.wallS, extrapolatedWallS: per.wallS * k, extrapolatedCpuS: (per.userS + per.sysS) * k },
    hashIndexDefault: { ...def, threads: 'default (min(4, cores))' },
    hashIndexOneThread: single,
  };
}
