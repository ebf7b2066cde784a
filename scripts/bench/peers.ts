// The peers an admin would pick instead: BorgBackup and restic (Debian packages), backing up the
// same volumes into local repositories. Their repository growth per run stands for what they
// would send to and store on the box.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { duBytes, run, timed, version } from './exec.js';

export interface PeerRun {
  wallS: number;
  cpuS: number;
  maxRssMiB: number;
  repoGrowthBytes: number;
}

export interface Peer {
  name: 'borg' | 'restic';
  version: string;
  backup(label: string): Promise<PeerRun>;
}

export async function makePeers(work: string, paths: string[]): Promise<Peer[]> {
  const peers: Peer[] = [];
  const borgV = await version('borg', ['--version']);
  if (borgV !== 'missing') {
    const repo = join(work, 'borg-repo');
    const env = {
      BORG_BASE_DIR: join(work, 'borg-home'),
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    };
    await rm(repo, { recursive: true, force: true });
    await rm(env.BORG_BASE_DIR, { recursive: true, force: true });
    await mkdir(env.BORG_BASE_DIR, { recursive: true });
    await run('borg', ['init', '-e', 'none', repo], { env });
    peers.push({
      name: 'borg',
      version: borgV,
      async backup(label) {
        const before = await duBytes(repo);
        // borg 1.2 defaults: lz4 compression, buzhash chunker; the files cache skips unchanged files.
        const t = await timed('borg', ['create', '--compression', 'lz4', `${repo}::${label}`, ...paths], { env });
        return { wallS: t.wallS, cpuS: t.userS + t.sysS, maxRssMiB: t.maxRssKiB / 1024, repoGrowthBytes: (await duBytes(repo)) - before };
      },
    });
  }
  const resticV = (await version('restic', ['version'])).replace(/ compiled.*/, '');
  if (resticV !== 'missing') {
    const repo = join(work, 'restic-repo');
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
    await rm(repo, { recursive: true, force: true });
    await rm(env.RESTIC_CACHE_DIR, { recursive: true, force: true });
    // restic 0.14 has no --insecure-no-password (0.17+): a fixed password; v2 repositories compress.
    await run('restic', ['init', '--repository-version', '2'], { env });
    peers.push({
      name: 'restic',
      version: resticV,
      async backup() {
        const before = await duBytes(repo);
        const t = await timed('restic', ['backup', '--quiet', ...paths], { env });
        return { wallS: t.wallS, cpuS: t.userS + t.sysS, maxRssMiB: t.maxRssKiB / 1024, repoGrowthBytes: (await duBytes(repo)) - before };
      },
    });
  }
  return peers;
}
