// The box's ZFS snapshots (issue 20): what survives when whoever has this server's SSH key wipes
// the backups. The stand-in box shows read-only `.zfs/snapshot/<name>/` copies taken by the test,
// named like Hetzner's; the tool checks them, reports them, stops when the live folder was
// emptied behind its back, and restores from them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { sftpClientArgs, sshClientArgs } from '../src/sandbox/storage-box.js';
import { massDeletion, parseBackupRef, snapshotBackupFolder, snapshotsIn, snapshotTime } from '../src/plan/snapshots.js';
import { startWizard, type Terminal } from './support/tmux.js';
import { BACKUP_CLI, flipByte, publishedOnBox, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';

const execFileP = promisify(execFile);
const VOLS = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;
const HOUR = 3_600_000;

async function volumeHashes(sb: Sandbox): Promise<Record<string, Map<string, string>>> {
  const r: Record<string, Map<string, string>> = {};
  for (const v of VOLS) r[v] = await treeHashes(sb.mailcow.volume(v));
  return r;
}

/** A command in the box's shell over ssh, as an attacker with the server's key would send it. */
async function onBox(sb: Sandbox, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP('ssh', [...sshClientArgs(sb.box), `${sb.box.user}@${sb.box.host}`, command]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe('ZFS snapshots on the Storage Box', { timeout: 600_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let first: string;
  let atFirst: Record<string, Map<string, string>>;
  let snapshot: string;
  let firstRun: { code: number; stdout: string; stderr: string };
  let term: Terminal | undefined;
  const prom = () => path.join(dir, 'metrics', 'mailcow_backup.prom');
  const live = () => path.join(sb.box.root, sb.remotePath);
  // The tool's clock for a run `hours` after the first backup.
  const later = (hours: number) => ({ ...sb.env, MAILCOW_BACKUP_TEST_CLOCK: new Date(Date.now() + hours * HOUR).toISOString() });

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'snapshots-test-'));
    sb = await createSandbox({ dir, mailBytes: 1024 * 1024, seed: 20, config: { PROMETHEUS_TEXTFILE: path.join(dir, 'metrics', 'mailcow_backup.prom') } });
    firstRun = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], sb.env);
    assert.equal(firstRun.code, 0, firstRun.stderr);
    [first] = await publishedOnBox(sb.box.root, sb.remotePath);
    atFirst = await volumeHashes(sb);
  });
  after(async () => {
    term?.close();
    await sb?.stop();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('no snapshots: check WARNs with the steps to turn on a snapshot plan, and the run reports it (once a week)', async () => {
    const r = await runCli(BACKUP_CLI, ['check', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const line = r.stdout.split('\n').find((l) => /^\S+ +snapshots /.test(l)) ?? '';
    assert.match(line, /^WARN +snapshots +no snapshots visible under \/home\/\.zfs\/snapshot/);
    assert.match(line, /can delete every backup/);
    assert.match(line, /Hetzner's console open Storage Boxes -> this box -> Snapshots, turn on automatic snapshots/);
    assert.match(firstRun.stdout, /^ {2}snapshots {4}WARN no snapshots visible/m);
    // The same week: the daily report does not repeat it.
    const again = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], later(1));
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /^ {2}snapshots /m);
  });

  it('snapshots present: check, status and Prometheus give their number and the newest one\'s age', async () => {
    snapshot = await sb.box.takeSnapshot(new Date(Date.now() + 2 * HOUR)); // taken "3 h" before the clock below
    const newest = (await publishedOnBox(sb.box.root, sb.remotePath)).at(-1)!;
    const c = await runCli(BACKUP_CLI, ['check', '--config', sb.configPath], later(5));
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.match(c.stdout, new RegExp(`^OK +snapshots +1 snapshot\\(s\\); the newest, ${snapshot}, taken 3\\.0 h ago, holds the newest backup ${newest}`, 'm'));

    // A backup after the snapshot is not protected yet; the weekly line comes back after 7 days.
    const r = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], later(8 * 24));
    assert.equal(r.code, 0, r.stderr);
    const made = (await publishedOnBox(sb.box.root, sb.remotePath)).at(-1)!;
    assert.match(r.stdout, new RegExp(`^ {2}snapshots {4}OK 1 snapshot\\(s\\); the newest, ${snapshot}, taken 7 d ago; the newest backup ${made} is younger and not protected until the next snapshot; the newest backup inside a snapshot is ${newest}`, 'm'));
    const s = await runCli(BACKUP_CLI, ['status', '--config', sb.configPath], later(8 * 24 + 1));
    assert.match(s.stdout, new RegExp(`^snapshots {6}1, the newest ${snapshot} 7 d old`, 'm'));
    const metrics = await fsp.readFile(prom(), 'utf8');
    assert.match(metrics, /^mailcow_backup_snapshots 1$/m);
    const ts = Number(/^mailcow_backup_snapshot_newest_timestamp_seconds (\S+)$/m.exec(metrics)?.[1]);
    assert.equal(new Date(ts * 1000).toISOString().slice(0, 19).replace(/:/g, '-'), snapshot);
    const ageSec = Number(/^mailcow_backup_snapshot_newest_age_seconds (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(Math.abs(ageSec - (8 * 86400 - 2 * 3600)) < 600, String(ageSec));
  });

  it('the box user cannot change or delete anything inside .zfs (shell, rsync, sftp), but can list it', async () => {
    const inSnap = path.join(sb.box.root, '.zfs/snapshot', snapshot, sb.remotePath, first);
    const before = await treeHashes(inSnap);
    const rm = await onBox(sb, `rm -rf .zfs/snapshot/${snapshot}/${sb.remotePath}`);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, new RegExp(`rm: cannot remove '\\.zfs/snapshot/${snapshot}/backups/mailcow': Read-only file system`));
    const abs = await onBox(sb, `rm -f /home/.zfs/snapshot/${snapshot}/${sb.remotePath}/${first}/checksums.sha256`);
    assert.match(abs.stderr, /Read-only file system/);
    const touch = await onBox(sb, `touch .zfs/snapshot/${snapshot}/x`);
    assert.match(touch.stderr, /Read-only file system/);
    // rsync --delete of an empty folder over the snapshot
    const empty = await fsp.mkdtemp(path.join(dir, 'empty-'));
    const rs = await execFileP('rsync', ['-r', '--delete', '-e', ['ssh', ...sshClientArgs(sb.box)].join(' '), `${empty}/`, `${sb.box.user}@${sb.box.host}:.zfs/snapshot/${snapshot}/`]).then(() => 0, (e: { code?: number }) => e.code ?? 1);
    assert.notEqual(rs, 0);
    // sftp: a batch that tries to remove a file inside the snapshot
    const batch = path.join(dir, 'sftp-batch');
    await fsp.writeFile(batch, `rm .zfs/snapshot/${snapshot}/${sb.remotePath}/${first}/backup.json\n`);
    await execFileP('sftp', [...sftpClientArgs(sb.box), '-b', batch, `${sb.box.user}@${sb.box.host}`]).then(() => 0, () => 1);
    assert.deepEqual([...(await treeHashes(inSnap))], [...before], 'the snapshot is unchanged');
    const ls = await onBox(sb, 'ls .zfs/snapshot');
    assert.equal(ls.code, 0);
    assert.equal(ls.stdout.trim(), snapshot);
  });

  it('the wizard: a live backup that fails verification is offered again from the snapshot, and restored from there', async () => {
    const damaged = path.join(live(), first, 'archives/crypt/crypt/ecpubkey.pem.zst');
    await flipByte(damaged);
    const crypt = sb.mailcow.volume('crypt');
    await fsp.writeFile(path.join(crypt, 'ecpubkey.pem'), 'not the key');
    try {
      const t = (term = startWizard(`snapshots-verify-${process.pid}`, RESTORE_CLI, ['--config', sb.configPath], { ...sb.env, STANDIN_PROMPTS: 'tty' }));
      await t.waitFor(/Which backup\?/);
      t.keys('Down', 'Down'); // the oldest of the three: the first backup
      await t.waitFor(new RegExp(`❯ ${first}|> ${first}`));
      t.keys('Enter');
      await t.waitFor(/What should be restored\?/);
      t.keys('Down');
      t.keys('Enter');
      await t.waitFor(/Components/);
      t.keys('Down');
      t.keys('Space'); // crypt
      t.keys('Enter');
      await t.waitFor(/Type RESTORE to start/);
      t.type('RESTORE');
      t.keys('Enter');
      const offer = await t.waitFor(/Restore from a snapshot instead\?/, 60_000);
      assert.match(offer, /archives\/crypt\/crypt\/ecpubkey\.pem\.zst/);
      assert.match(offer, new RegExp(`the box's read-only snapshots hold 2 backup\\(s\\), ${first} among them`));
      assert.match(offer, new RegExp(`❯ ${first}@${snapshot}|> ${first}@${snapshot}`));
      t.keys('Enter');
      await t.waitFor(new RegExp(`OK +backup +${first} as the snapshot ${snapshot} holds it[\\s\\S]*Type RESTORE to start`));
      t.type('RESTORE');
      t.keys('Enter');
      const done = await t.waitFor(/WIZARD-EXIT=\d+/, 90_000);
      assert.match(done, /WIZARD-EXIT=0/, done);
      assert.deepEqual([...(await treeHashes(crypt))].sort(), [...atFirst.crypt!].sort());
      t.close();
      term = undefined;
    } finally {
      await flipByte(damaged);
    }
  });

  it('the live folder wiped: the next run fails (exit 1), prunes nothing, and names the snapshot to restore from', async () => {
    const wipe = await onBox(sb, `rm -rf ${sb.remotePath}`);
    assert.equal(wipe.code, 0, wipe.stderr);
    const r = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], later(8 * 24 + 2));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /3 of the 3 backups this host last saw in backups\/mailcow on the Storage Box are gone/);
    assert.match(r.stderr, new RegExp(`Nothing was backed up and nothing was pruned; the snapshot ${snapshot} holds 2 of them: see 'restore-from-hetzner --list --snapshots', restore with --backup NAME@${snapshot}`));
    assert.match(r.stdout, /backup FAILED in phase preflight \(exit 1\)/);
    assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), [], 'nothing published');
    assert.ok(!(await fsp.readdir(live()).catch(() => [] as string[])).some((n) => n.startsWith('.incomplete-')), 'nothing uploaded');
    const status = JSON.parse(await fsp.readFile(path.join(dir, 'state', 'status.json'), 'utf8')) as { result: string; error: string };
    assert.equal(status.result, 'failed');
    assert.match(status.error, new RegExp(`snapshot ${snapshot}`));
    // Retention on its own refuses too; a second run still fails (the memory is kept).
    const p = await runCli(BACKUP_CLI, ['prune', '--config', sb.configPath], later(8 * 24 + 3));
    assert.equal(p.code, 1, p.stdout + p.stderr);
    const again = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], later(8 * 24 + 4));
    assert.equal(again.code, 1);
  });

  it('--list --snapshots shows the backups inside snapshots as NAME@SNAPSHOT, marking those gone from the live folder', async () => {
    const r = await runCli(RESTORE_CLI, ['--list', '--snapshots', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${first}@${snapshot} +\\S+ \\S+ +\\S+ \\S+ +NO: gone from the live folder$`, 'm'));
    const j = await runCli(RESTORE_CLI, ['--list', '--snapshots', '--json', '--config', sb.configPath], sb.env);
    const list = JSON.parse(j.stdout) as { snapshots: number; backups: { ref: string; live: boolean }[] };
    assert.equal(list.snapshots, 1);
    assert.equal(list.backups.length, 2);
    assert.ok(list.backups.some((b) => b.ref === `${first}@${snapshot}` && !b.live));
  });

  it('the wizard, finding the live folder empty, offers the backups inside the snapshots and restores from one', async () => {
    const crypt = sb.mailcow.volume('crypt');
    await fsp.writeFile(path.join(crypt, 'ecpubkey.pem'), 'not the key');
    const t = (term = startWizard(`snapshots-wizard-${process.pid}`, RESTORE_CLI, ['--config', sb.configPath], { ...sb.env, STANDIN_PROMPTS: 'tty' }));
    const first_screen = await t.waitFor(/Which backup, from which snapshot\?/);
    assert.match(first_screen, /the live folder on the Storage Box holds no published backup/);
    assert.match(first_screen, new RegExp(`${first}@${snapshot} +\\(gone from the live folder\\)`));
    t.keys('Down'); // the older of the two: the first backup
    t.keys('Enter');
    await t.waitFor(/What should be restored\?/);
    t.keys('Down');
    t.keys('Enter');
    await t.waitFor(/Components/);
    t.keys('Down');
    t.keys('Space'); // crypt
    t.keys('Enter');
    const screen = await t.waitFor(/Type RESTORE to start/);
    assert.match(screen, new RegExp(`OK +backup +${first} as the snapshot ${snapshot} holds it`));
    t.type('RESTORE');
    t.keys('Enter');
    const done = await t.waitFor(/WIZARD-EXIT=\d+/, 90_000);
    assert.match(done, /WIZARD-EXIT=0/, done);
    assert.deepEqual([...(await treeHashes(crypt))].sort(), [...atFirst.crypt!].sort());
    t.close();
    term = undefined;
  });

  it('a damaged file inside a snapshot is refused like any damaged backup (exit 5, nothing changed)', async () => {
    const file = path.join(sb.box.root, '.zfs/snapshot', snapshot, sb.remotePath, first, 'archives/redis/redis/dump.rdb.zst');
    assert.ok(existsSync(file));
    await fsp.chmod(path.dirname(file), 0o755);
    await flipByte(file);
    const before = await volumeHashes(sb);
    try {
      const r = await runCli(RESTORE_CLI, ['--backup', `${first}@${snapshot}`, '--components', 'all', '--yes', '--config', sb.configPath], sb.env, 180_000);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      assert.match(r.stderr, /archives\/redis\/redis\/dump\.rdb\.zst/);
      const now = await volumeHashes(sb);
      for (const v of VOLS) assert.deepEqual([...now[v]!], [...before[v]!], `${v} unchanged`);
    } finally {
      await flipByte(file);
      await fsp.chmod(path.dirname(file), 0o555);
    }
  });

  it('restore from NAME@SNAPSHOT gives volumes identical to the backup', async () => {
    await fsp.rm(path.join(sb.mailcow.volume('vmail'), 'example.com'), { recursive: true });
    await fsp.writeFile(path.join(sb.mailcow.volume('rspamd'), 'stats.ucl'), 'encrypted by ransomware');
    const r = await runCli(RESTORE_CLI, ['--backup', `${first}@${snapshot}`, '--components', 'all', '--yes', '--config', sb.configPath], sb.env, 240_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`OK +backup +${first} as the snapshot ${snapshot} holds it`));
    const now = await volumeHashes(sb);
    for (const v of VOLS) assert.deepEqual([...now[v]!].sort(), [...atFirst[v]!].sort(), `${v} identical to ${first}`);
  });
});

describe('snapshot names, the mass-deletion rule and --backup NAME@SNAPSHOT (pure)', () => {
  it("reads Hetzner's snapshot names as UTC times and lists the newest first; hostile names never pass", () => {
    assert.equal(snapshotTime('2025-02-12T11-35-19')?.toISOString(), '2025-02-12T11:35:19.000Z');
    assert.equal(snapshotTime('manual-before-upgrade'), undefined);
    const list = snapshotsIn([
      { name: '2026-12-01T04-00-00', type: 'dir' },
      { name: '2026-12-03T04-00-00', type: 'dir' },
      { name: 'before-upgrade', type: 'dir' },
      { name: '-rf', type: 'dir' },
      { name: 'a b', type: 'dir' },
      { name: '2026-12-04T04-00-00', type: 'file' },
    ]);
    assert.deepEqual(list.map((s) => s.name), ['2026-12-03T04-00-00', '2026-12-01T04-00-00', 'before-upgrade']);
  });

  it('more than half of the remembered backups gone is a mass deletion; retention-sized losses are not', () => {
    const b = (d: number) => `mailcow-2026-12-0${d}-03-00-00`;
    assert.deepEqual(massDeletion([b(1)], []), [b(1)]);
    assert.equal(massDeletion([b(1), b(2)], [b(2)]), undefined);
    assert.deepEqual(massDeletion([b(1), b(2), b(3)], [b(3)]), [b(1), b(2)]);
    assert.equal(massDeletion([b(1), b(2), b(3), b(4)], [b(3), b(4), b(5)]), undefined);
    assert.equal(massDeletion([], []), undefined);
  });

  it('--backup NAME@SNAPSHOT: the folder inside the snapshot, relative to the box home; a bad snapshot name is refused', () => {
    assert.deepEqual(parseBackupRef('mailcow-2026-12-05-03-00-00@2026-12-05T04-00-00'), { name: 'mailcow-2026-12-05-03-00-00', snapshot: '2026-12-05T04-00-00' });
    assert.deepEqual(parseBackupRef('latest'), { name: 'latest' });
    assert.ok('error' in parseBackupRef('latest@../../etc'));
    assert.equal(snapshotBackupFolder('2026-12-05T04-00-00', 'backups/mailcow', 'mailcow-2026-12-05-03-00-00'), '.zfs/snapshot/2026-12-05T04-00-00/backups/mailcow/mailcow-2026-12-05-03-00-00');
  });
});
