// `backup-to-hetzner check`: every precondition of a run, each with OK/WARN/FAIL and a fix.
// It writes nothing on the box but a probe folder that it removes again.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorText } from '../errors.js';
import { bytes } from '../plan/human.js';
import { PROBE_PREFIX, publishedBackups } from '../plan/names.js';
import { snapshotVerdict } from '../plan/snapshots.js';
import { snapshotFacts } from './snapshots.js';
import { boxAbsolute, remoteSpec, rsyncRemoteShell } from '../plan/transport-args.js';
import { PUBLISHED_FINGERPRINTS, pinnedFingerprints } from '../adapters/host-key.js';
import { freeBytes } from '../adapters/disk.js';
import { checkMailcowFolder, readMailcowConf, volumePath } from '../adapters/mailcow.js';
import { mailCryptFacts } from '../adapters/mail-crypt.js';
import { recipientFingerprint } from '../plan/age-keys.js';
import { mailCryptVerdict } from '../plan/mail-crypt.js';
import type { RunContext } from './context.js';
import { checkComponents, checkKeyFile, checkKnownHosts } from './preflight.js';
import { unitPathReport } from './unit-paths.js';

export type CheckStatus = 'OK' | 'WARN' | 'FAIL' | 'SKIP';
export interface CheckResult {
  title: string;
  status: CheckStatus;
  detail: string;
}

/** What needs the connection, in order; each is SKIP (with why) when there is none. */
const BOX_CHECKS = ['box commands', 'hard links', 'sftp rename', 'box space', 'snapshots'];
/** Every check `check` prints, in order (vmail volume only when vmail is backed up). */
export const CHECK_TITLES = ['config', 'components', 'mailcow', 'vmail volume', 'mail_crypt', 'encryption', 'local disk', 'ssh key', 'host key', 'connection', ...BOX_CHECKS];

export const checkLine = (r: CheckResult) => `${r.status.padEnd(5)} ${r.title.padEnd(14)} ${r.detail}`;

/** A config that does not load: every check is listed, the config as FAIL and the others as SKIP. */
export function badConfigChecks(error: string): CheckResult[] {
  return CHECK_TITLES.map((title) =>
    title === 'config'
      ? { title, status: 'FAIL', detail: `${error} (on stderr, one line each)` }
      : { title, status: 'SKIP', detail: 'not checked: the config is invalid' },
  );
}

export async function runChecks(ctx: RunContext, onResult: (r: CheckResult) => void = () => {}): Promise<CheckResult[]> {
  const c = ctx.config;
  const results: CheckResult[] = [];
  const add = (title: string, status: CheckStatus, detail: string) => {
    const r = { title, status, detail };
    results.push(r);
    onResult(r);
    return r;
  };
  const attempt = async (title: string, fn: () => Promise<string | [CheckStatus, string]>) => {
    try {
      const r = await fn();
      return Array.isArray(r) ? add(title, r[0], r[1]) : add(title, 'OK', r);
    } catch (e) {
      return add(title, 'FAIL', errorText(e));
    }
  };

  add('config', 'OK', `${ctx.configPath} is valid`);
  await attempt('components', async () => {
    checkComponents(c);
    return c.BACKUP_COMPONENTS.join(' ');
  });
  const mailcow = await attempt('mailcow', async () => {
    checkMailcowFolder(c.MAILCOW_PATH);
    const conf = readMailcowConf(c.MAILCOW_PATH);
    return `${c.MAILCOW_PATH} (${conf.MAILCOW_HOSTNAME ?? 'no MAILCOW_HOSTNAME'})`;
  });
  if (c.BACKUP_COMPONENTS.includes('vmail')) {
    await attempt('vmail volume', async () => {
      const conf = mailcow.status === 'OK' ? readMailcowConf(c.MAILCOW_PATH) : {};
      const p = c.VMAIL_VOLUME_PATH ?? (await volumePath(ctx.exec, conf.COMPOSE_PROJECT_NAME || 'mailcowdockerized', 'vmail'));
      if (!p || !existsSync(p)) throw new Error(`not found (${p ?? 'docker volume inspect gave nothing'}); set VMAIL_VOLUME_PATH`);
      return p;
    });
  }
  await attempt('mail_crypt', async () => {
    const conf = mailcow.status === 'OK' ? readMailcowConf(c.MAILCOW_PATH) : {};
    const project = conf.COMPOSE_PROJECT_NAME || 'mailcowdockerized';
    const vmail = c.VMAIL_VOLUME_PATH ?? (await volumePath(ctx.exec, project, 'vmail'));
    return mailCryptVerdict(await mailCryptFacts(c.MAILCOW_PATH, await volumePath(ctx.exec, project, 'crypt'), vmail));
  });
  await attempt('encryption', async () => {
    const r = c.ENCRYPT_RECIPIENTS ?? [];
    if (r.length === 0) return ['WARN', 'off: the box can read mailcow.conf (DB passwords), the database, redis and the crypt keys; set ENCRYPT_RECIPIENTS to an age public key (README, "Encryption")'];
    await import('age-encryption'); // the library the run needs must load
    return `on: mailcow.conf and the archives are encrypted with age to ${r.map(recipientFingerprint).join(', ')} before upload; vmail is sent as a file tree`;
  });
  await attempt('local disk', async () => {
    let dir = c.TEMP_BACKUP_DIR;
    while (!existsSync(dir)) dir = join(dir, '..');
    return `${bytes(await freeBytes(dir))} free for ${c.TEMP_BACKUP_DIR}`;
  });
  try {
    const unit = unitPathReport(c);
    if (unit && !unit.missing.length) add('unit paths', 'OK', `${unit.unitPath} lets the timer's runs write every path the config names`);
    unit?.missing.forEach((m, i) => add('unit paths', m.neededBy === 'run' ? 'FAIL' : 'WARN', unit.lines[i]!));
  } catch (e) {
    add('unit paths', 'WARN', `cannot read the installed unit: ${errorText(e)}`);
  }
  await attempt('ssh key', async () => {
    checkKeyFile(c.SSH_KEY_PATH);
    return c.SSH_KEY_PATH;
  });
  const pinned = await attempt('host key', async () => {
    checkKnownHosts(c.SSH_KNOWN_HOSTS);
    const fps = await pinnedFingerprints(ctx.exec, c.SSH_KNOWN_HOSTS, c.HETZNER_HOST, c.HETZNER_PORT);
    if (fps.length === 0) throw new Error(`${c.SSH_KNOWN_HOSTS} has no key for [${c.HETZNER_HOST}]:${c.HETZNER_PORT}; pin it with the installer`);
    const hetzner = fps.filter((f) => PUBLISHED_FINGERPRINTS.includes(f));
    if (hetzner.length) return `pinned, matches Hetzner's published Storage Box key (${hetzner[0]})`;
    return ['WARN', `pinned ${fps.join(', ')}, which is not one of Hetzner's published Storage Box keys (expected for a test box; otherwise check the host)`];
  });
  const skipBox = (why: string) => {
    for (const t of BOX_CHECKS) add(t, 'SKIP', why);
    return results;
  };
  if (pinned.status === 'FAIL') {
    add('connection', 'SKIP', 'not tried: no pinned host key');
    return skipBox('not checked: no connection to the box (no pinned host key)');
  }
  const conn = await attempt('connection', async () => {
    await ctx.box.connect();
    return `${c.HETZNER_USER}@${c.HETZNER_HOST}:${c.HETZNER_PORT}, host key verified`;
  });
  if (conn.status === 'FAIL') return skipBox('not checked: no connection to the box (see connection)');
  try {
    const root = c.HETZNER_REMOTE_PATH;
    const probe = `${root}/${PROBE_PREFIX}${process.pid}`;
    await attempt('box commands', async () => {
      const needed: string[][] = [['mkdir', '-p', `${probe}/a`], ['ls', '-ld', probe], ['du', '-sk', probe], ['df']];
      const refused: string[] = [];
      for (const w of needed) if (!(await ctx.box.accepts(w))) refused.push(w[0]!);
      if (refused.length) throw new Error(`the box refuses ${refused.join(', ')}; the backup needs them`);
      return 'mkdir, ls, du, df accepted';
    });
    await attempt('verification', async () => {
      if ((await ctx.box.verifyMethod()) === 'sha256sum') return "sha256sum: the box hashes its own files; nothing is downloaded to verify";
      return [
        'WARN',
        "the box refuses sha256sum: each run verifies with rsync --checksum instead (the box's rsync reads every file it checks, this host re-reads its copy of them; see docs/performance.md); " +
          "'verify' downloads older backups to hash them here (their full size in bandwidth) and the run's scrub (SCRUB_BUDGET_MINUTES) skips them",
      ];
    });
    await attempt('hard links', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'mcb-probe-'));
      try {
        await writeFile(join(dir, 'probe'), 'mailcow-cold-standby hard link probe\n');
        const shell = rsyncRemoteShell(ctx.box.target);
        await ctx.exec('rsync', ['-rlpt', '-e', shell, `${dir}/`, remoteSpec(ctx.box.target, `${probe}/a/`)], { what: 'uploading the probe' });
        await ctx.exec('rsync', ['-rlpt', `--link-dest=${boxAbsolute(`${probe}/a`)}`, '-e', shell, `${dir}/`, remoteSpec(ctx.box.target, `${probe}/b/`)], { what: 'uploading the probe again with --link-dest' });
        const [n] = await ctx.box.linkCounts([`${probe}/b/probe`]);
        if ((n ?? 0) < 2) return ['WARN', 'rsync --link-dest made a copy, not a hard link: transfers stay small, but every backup will cost its full size on the box'];
        // Between backups the box copies the newest mail tree as links and only the changes are sent.
        const failed = await ctx.box.copyLinked(`${probe}/a`, `${probe}/d`);
        const [m] = failed === undefined ? await ctx.box.linkCounts([`${probe}/d/probe`]) : [0];
        if ((m ?? 0) >= 3) return "rsync --link-dest and the box's cp -al make hard links: unchanged files cost no space, and a run sends only the mail that changed";
        return [
          'WARN',
          `rsync --link-dest makes hard links, but the box's 'cp -al' did not (${failed ?? 'it made a copy'}): unchanged files still cost no space, but each run's rsync walks the whole mail tree and sends every file name (slower, more bytes; see docs/performance.md)`,
        ];
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
    await attempt('sftp rename', async () => {
      await ctx.box.rename(`${probe}/b`, `${probe}/c`);
      const names = (await ctx.box.list(probe)).map((e) => e.name);
      if (!names.includes('c')) throw new Error('sftp rename did not take effect; publishing a verified backup needs it');
      return 'publishing by atomic rename works';
    });
    await attempt('box space', async () => {
      const u = await ctx.box.usage();
      if (!u) return ['WARN', 'df gave no numbers'];
      const pct = (100 * u.usedBytes) / u.sizeBytes;
      const detail = `${bytes(u.usedBytes)} used, ${bytes(u.availableBytes)} free of ${bytes(u.sizeBytes)} (${pct.toFixed(0)} %)`;
      return pct > 90 ? ['WARN', `${detail}: nearly full`] : detail;
    });
    await ctx.box.removeTree(probe).catch(() => undefined);
    await attempt('snapshots', async () => snapshotVerdict(await snapshotFacts(ctx, publishedBackups(await ctx.box.list(root)).at(-1)), ctx.now()));
  } finally {
    await ctx.box.close();
  }
  return results;
}
