// The cost of verifying on a box without sha256sum: the same published backup's mail checked by
// the run's own verify step twice, once with the box's sha256sum and once with the fallback
// (rsync --checksum --dry-run against the local maildir), the box's CPU read from the stand-in's
// sshd (finished logins add to its children's time) and ours from this process and its children.
import { lstat, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildContext } from '../../src/cli/context.js';
import { verifyOnBox } from '../../src/backup/transfer.js';
import { BackupManifest } from '../../src/plan/backup-manifest.js';
import { readManifest, type ManifestEntry } from '../../src/plan/manifest.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';

export interface VerifyMethodRun {
  wallS: number;
  /** CPU of every box process (box-shell, sha256sum, the box's rsync, sshd sessions). */
  boxCpuS: number;
  /** CPU here: this process (hash workers) and its children (rsync, ssh). */
  localCpuS: number;
}

export interface VerifyMethodRefs {
  files: number;
  bytes: number;
  sha256sum: VerifyMethodRun;
  rsyncChecksum: VerifyMethodRun;
}

const TICK = 100; // USER_HZ on Linux

/** utime+stime and cutime+cstime of a process, in seconds. */
async function procCpu(pid: number | 'self'): Promise<{ own: number; children: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  // Fields 14..17 of stat(5), counted from field 3 after the command name.
  return { own: (f[11]! + f[12]!) / TICK, children: (f[13]! + f[14]!) / TICK };
}

/** The box's CPU so far; waits until logins just closed were reaped (their time then counts). */
async function boxCpu(sb: Sandbox): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const c = await procCpu(sb.box.sshdPid);
    const now = c.own + c.children;
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

export async function verifyMethods(sb: Sandbox, name: string, workDir: string): Promise<VerifyMethodRefs> {
  const folder = join(sb.box.root, sb.remotePath, name);
  const vmail = sb.mailcow.volume('vmail');
  const listed: { path: string; hash: string }[] = [];
  const entries = new Map<string, ManifestEntry>();
  let bytes = 0;
  // The backup as the run would have it: the box's manifest, the local files' size and time.
  await readManifest(folder, (e) => void (e.path.startsWith('vmail/') && listed.push(e)));
  for (const e of listed) {
    const st = await lstat(join(vmail, e.path.slice('vmail/'.length)));
    entries.set(e.path, { ...e, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
    bytes += st.size;
  }
  const measure = async (noSha256sum: boolean): Promise<VerifyMethodRun> => {
    await sb.box.setMode({ noSha256sum });
    const runDir = join(workDir, `verify-${noSha256sum ? 'rsync' : 'sha256sum'}`);
    await mkdir(runDir, { recursive: true });
    const ctx = buildContext({ config: sb.configPath }, new AbortController().signal, 'silent');
    const box0 = await boxCpu(sb);
    const local0 = await procCpu('self');
    const t0 = performance.now();
    await ctx.box.connect();
    try {
      const v = await verifyOnBox(ctx, `${sb.remotePath}/${name}`, new BackupManifest(new Map(entries)), entries.keys(), [{ root: vmail, prefix: 'vmail' }], runDir, () => true);
      if (v.method !== (noSha256sum ? 'rsync-checksum' : 'sha256sum')) throw new Error(`verified with ${v.method}`);
      if (v.changedDuringRun.length || v.vanishedDuringRun.length) throw new Error('the mail changed while it was verified');
    } finally {
      await ctx.box.close();
      await ctx.log.close();
    }
    const wallS = (performance.now() - t0) / 1000;
    const local1 = await procCpu('self');
    const box1 = await boxCpu(sb);
    await rm(runDir, { recursive: true, force: true });
    return { wallS, boxCpuS: box1 - box0, localCpuS: local1.own + local1.children - local0.own - local0.children };
  };
  try {
    // Both read the box's files once before: the page cache is as warm for the second as the first.
    await measure(false);
    return { files: entries.size, bytes, sha256sum: await measure(false), rsyncChecksum: await measure(true) };
  } finally {
    await sb.box.setMode({ noSha256sum: false });
  }
}
