// Restore end to end on the sandbox: a real backup with the CLI, then damage, then the restore
// CLI (unattended) against the loopback Storage Box and the stand-in mailcow.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { createStandinMailcow, mutateDatabases } from '../src/sandbox/mailcow-standin.js';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { createLogger } from '../src/adapters/logger.js';
import { runMailcowRestore } from '../src/restore/mailcow-restore.js';
import { formatChecksumLine, isManifestPart, readManifest } from '../src/plan/manifest.js';
import { assertSameTree, BACKUP_CLI, configWithOtherHostKey, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';

const VOLS = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;



async function volumeHashes(sb: Sandbox): Promise<Record<string, Map<string, string>>> {
  const r: Record<string, Map<string, string>> = {};
  for (const v of VOLS) r[v] = await treeHashes(sb.mailcow.volume(v));
  return r;
}

describe('restore-from-hetzner on the sandbox', { timeout: 360_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let atBackup: Record<string, Map<string, string>>;
  let env: Record<string, string>;
  let backupDir: string;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'restore-test-'));
    sb = await createSandbox({ dir, mailBytes: 2 * 1024 * 1024, seed: 5 });
    env = { ...sb.env, STANDIN_PROMPTS: 'tty' };
    const r = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    atBackup = await volumeHashes(sb);
    const names = (await fsp.readdir(path.join(sb.box.root, sb.remotePath))).filter((n) => n.startsWith('mailcow-'));
    assert.equal(names.length, 1);
    backupDir = path.join(sb.box.root, sb.remotePath, names[0]!);
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('lists the published backups as JSON, never a staging folder', async () => {
    await fsp.mkdir(path.join(sb.box.root, sb.remotePath, '.incomplete-mailcow-2020-01-01-00-00-00'));
    await fsp.mkdir(path.join(sb.box.root, sb.remotePath, 'mailcow-not-ours'));
    const r = await runCli(RESTORE_CLI, ['--list', '--json', '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { name: string; state: string }[];
    assert.deepEqual(list.map((b) => b.name), [path.basename(backupDir)]);
    assert.equal(list[0]!.state, 'verified');
    await fsp.rmdir(path.join(sb.box.root, sb.remotePath, '.incomplete-mailcow-2020-01-01-00-00-00'));
    await fsp.rmdir(path.join(sb.box.root, sb.remotePath, 'mailcow-not-ours'));
  });

  it('refuses without --yes and without a terminal (exit 2, names the flag)', async () => {
    const r = await runCli(RESTORE_CLI, ['--config', sb.configPath], env, 15_000);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--yes/);
  });

  it('refuses a box that presents another host key (exit 4) before touching anything', async () => {
    const { config } = await configWithOtherHostKey(sb, dir);
    const before = await volumeHashes(sb);
    const actionsBefore = (await sb.mailcow.readActions()).length;
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--config', config], env);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stderr, /presented a host key that is not pinned/);
    assert.ok(r.stderr.includes(`it sent ${sb.box.hostKeyFingerprint}`), r.stderr);
    const afterH = await volumeHashes(sb);
    for (const v of VOLS) assertSameTree(afterH[v]!, before[v]!, `${v} untouched`);
    assert.equal((await sb.mailcow.readActions()).length, actionsBefore, 'no docker/mailcow action');
  });

  it('refuses before touching any volume when one byte on the box is corrupt', async () => {
    const victim = (await fsp.readdir(path.join(backupDir, 'vmail/example.com/alice/Maildir/cur')))[0]!;
    const file = path.join(backupDir, 'vmail/example.com/alice/Maildir/cur', victim);
    const original = await fsp.readFile(file);
    const bad = Buffer.from(original);
    bad[Math.floor(bad.length / 2)] ^= 0x01;
    await fsp.writeFile(file, bad);
    const st = await fsp.stat(file);
    await fsp.utimes(file, st.atime, st.mtime);
    // damage the host so a wrongful restore would show; the victim too, so only the box has it
    await fsp.rm(path.join(sb.mailcow.volume('vmail'), 'example.com/bob'), { recursive: true });
    await fsp.rm(path.join(sb.mailcow.volume('vmail'), 'example.com/alice/Maildir/cur', victim));
    const before = await volumeHashes(sb);
    const actionsBefore = (await sb.mailcow.readActions()).length;
    try {
      const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--config', sb.configPath], env);
      assert.notEqual(r.code, 0);
      assert.equal(r.code, 5, r.stderr);
      assert.ok(r.stderr.includes(victim), `message names the file: ${r.stderr}`);
      assert.match(r.stderr, /nothing on this host was changed/);
      const afterH = await volumeHashes(sb);
      for (const v of VOLS) assertSameTree(afterH[v]!, before[v]!, `${v} untouched`);
      assert.equal((await sb.mailcow.readActions()).length, actionsBefore, 'no docker/mailcow action');
    } finally {
      await fsp.writeFile(file, original);
      await fsp.utimes(file, st.atime, st.mtime);
    }
  });

  it('unattended full restore (prompts as the real script: none) brings every volume back to backup time, datasets picked by label', async () => {
    await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 9, newFraction: 0.1, deleteFraction: 0.2, renameFraction: 0.1 });
    const someMail = [...atBackup.vmail!.keys()].find((k) => k.includes('/cur/'))!;
    if (existsSync(path.join(sb.mailcow.volume('vmail'), someMail))) await fsp.appendFile(path.join(sb.mailcow.volume('vmail'), someMail), 'altered');
    await mutateDatabases(sb.mailcow, 9);
    await fsp.rm(path.join(sb.mailcow.volume('postfix'), 'deferred'), { recursive: true });
    await fsp.writeFile(path.join(sb.mailcow.volume('crypt'), 'ecprivkey.pem'), 'wrong key');
    await fsp.writeFile(path.join(sb.mailcow.volume('rspamd'), 'stats.ucl'), 'changed');
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--config', sb.configPath], env, 120_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const now = await volumeHashes(sb);
    for (const v of VOLS) assertSameTree(now[v]!, atBackup[v]!, `${v} identical to backup time`);
    const actions = await sb.mailcow.readActions();
    for (const c of ['crypt', 'redis', 'rspamd', 'postfix', 'mysql']) assert.ok(actions.includes(`restore-selected ${c}`), `${c} chosen by label: ${actions.join('|')}`);
    assert.ok(actions.includes('docker compose stop watchdog-mailcow dovecot-mailcow'), actions.join('|'));
    assert.ok(actions.some((a) => /doveadm force-resync -A \*/.test(a)));
    const st = await fsp.stat(path.join(sb.mailcow.volume('vmail'), someMail));
    assert.equal(st.uid, 5000);
    assert.match(r.stdout, /restored from mailcow-.*: crypt, mysql, redis, rspamd, postfix, vmail/);
    // mailcow's script stopped watchdog and each volume's container around its extraction, the tool
    // stopped dovecot for the mail: every one of them runs again, as docker itself says.
    for (const c of ['crypt', 'redis', 'rspamd', 'postfix']) assert.ok(actions.includes(`run mailcow-backup restore ${c} (mailcowdockerized_${c}-vol-1)`), actions.join('|'));
    for (const c of ['watchdog', 'dovecot', 'redis', 'rspamd', 'postfix']) assert.ok(actions.includes(`docker stop ${c}-mailcow`), `${c} stopped: ${actions.join('|')}`);
    assert.ok(actions.includes('docker compose down') && actions.includes('docker compose up -d'), actions.join('|'));
    assert.match(r.stdout, /mailcow containers: 6 of 6 up/);
    const ps = execFileSync('docker', ['ps', '--format', '{{.Names}}'], { env: { ...process.env, ...sb.env } }).toString().trim().split('\n').sort();
    assert.deepEqual(ps, ['dovecot', 'mysql', 'postfix', 'redis', 'rspamd', 'watchdog'].map((c) => `mailcowdockerized-${c}-mailcow-1`));
    assert.ok(!existsSync(path.join(dir, 'tmp', 'restore', path.basename(backupDir))), 'download removed');
  });

  it('single-mailbox restore brings back exactly one user and leaves another user\'s new mail in place', async () => {
    const vm = sb.mailcow.volume('vmail');
    const alice = 'example.com/alice';
    await fsp.rm(path.join(vm, alice, 'Maildir/cur'), { recursive: true });
    await fsp.writeFile(path.join(vm, alice, 'Maildir/new/1799999999.M1P1.host,S=5'), 'extra');
    const bobNew = path.join(vm, 'example.com/bob/Maildir/new/1799999999.M2P2.host,S=9');
    await fsp.writeFile(bobNew, 'new mail!');
    const otherBefore = await treeHashes(path.join(vm, 'example.org'));
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--mailbox', 'alice@example.com', '--mode', 'replace', '--yes', '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stderr);
    const aliceNow = await treeHashes(path.join(vm, alice));
    const aliceThen = new Map([...atBackup.vmail!].filter(([k]) => k.startsWith(`${alice}/`)).map(([k, v]) => [k.slice(alice.length + 1), v]));
    assertSameTree(aliceNow, aliceThen, 'alice as at backup time');
    assert.equal(await fsp.readFile(bobNew, 'utf8'), 'new mail!');
    assertSameTree(await treeHashes(path.join(vm, 'example.org')), otherBefore, 'other domain untouched');
    assert.ok((await sb.mailcow.readActions()).some((a) => /doveadm force-resync -u alice@example.com \*/.test(a)));

    // merge: the backup's mail comes back as a folder next to the current mail
    await fsp.rm(path.join(vm, alice, 'Maildir/cur'), { recursive: true });
    const m = await runCli(RESTORE_CLI, ['--backup', 'latest', '--mailbox', 'alice@example.com', '--mode', 'merge', '--yes', '--config', sb.configPath], env);
    assert.equal(m.code, 0, m.stderr);
    const folders = (await fsp.readdir(path.join(vm, alice, 'Maildir'))).filter((n) => n.startsWith('.Restored-'));
    assert.ok(folders.length >= 2, folders.join(','));
    const inboxThen = [...aliceThen.keys()].filter((k) => k.startsWith('Maildir/cur/')).map((k) => path.basename(k)).sort();
    const restoredInbox = (await fsp.readdir(path.join(vm, alice, 'Maildir', folders.sort()[0]!, 'cur'))).sort();
    assert.deepEqual(restoredInbox, inboxThen);
    assert.equal(await fsp.readFile(bobNew, 'utf8'), 'new mail!');

    // a second merge of the same backup: its own folder, the first one left as it was, and said so
    const first = folders.sort()[0]!;
    const marker = path.join(vm, alice, 'Maildir', first, 'cur', '1799999999.M3P3.host,S=4');
    await fsp.writeFile(marker, 'kept');
    const m2 = await runCli(RESTORE_CLI, ['--backup', 'latest', '--mailbox', 'alice@example.com', '--mode', 'merge', '--yes', '--config', sb.configPath], env);
    assert.equal(m2.code, 0, m2.stderr);
    assert.ok(existsSync(path.join(vm, alice, 'Maildir', `${first}-2`, 'cur')), 'second merge in its own folder');
    assert.equal(await fsp.readFile(marker, 'utf8'), 'kept');
    assert.match(m2.stdout + m2.stderr, new RegExp(`the folder ${first.slice(1)} exists from an earlier restore and is left as it is; this one goes to ${first.slice(1)}-2`));
  });

  it('--mailbox without --mode merges (mail that arrived since stays); --mode replace names in the plan the mail it would remove', async () => {
    const vm = sb.mailcow.volume('vmail');
    // Its own starting point: alice as the backup holds her, without the earlier test's merge folders.
    for (const n of await fsp.readdir(path.join(vm, 'example.com/alice/Maildir'))) if (n.startsWith('.Restored-')) await fsp.rm(path.join(vm, 'example.com/alice/Maildir', n), { recursive: true });
    const arrived = path.join(vm, 'example.com/alice/Maildir/new/1800000000.M7P7.host,S=13');
    await fsp.writeFile(arrived, 'arrived later');
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--mailbox', 'alice@example.com', '--yes', '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fsp.readFile(arrived, 'utf8'), 'arrived later', 'the unattended default removes nothing');
    assert.match(r.stdout, /mailbox mode: merge \(the default; nothing in the mailbox is removed\)/);
    assert.match(r.stdout, /restored from mailcow-\S+: mailbox alice@example\.com \(merge, /);

    const c = await runCli(RESTORE_CLI, ['--backup', 'latest', '--mailbox', 'alice@example.com', '--mode', 'replace', '--check-only', '--config', sb.configPath], env);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const loss = c.stdout.split('\n').find((l) => l.includes('REMOVES'));
    assert.ok(loss, c.stdout);
    assert.match(loss, /REMOVES 1 message \(\d+ B\) the backup does not hold \(INBOX 1\); the newest from \d{4}-\d\d-\d\d \d\d:\d\d UTC: new\/1800000000\.M7P7\.host,S=13; --mode merge keeps them/);
    assert.equal(await fsp.readFile(arrived, 'utf8'), 'arrived later', '--check-only changes nothing');
    await fsp.rm(arrived);
  });

  it('--download-only gives a folder mailcow\'s own script can restore (vmail packed)', async () => {
    const out = path.join(dir, 'dl');
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--download-only', out, '--config', sb.configPath], env, 120_000);
    assert.equal(r.code, 0, r.stderr);
    const folder = path.join(out, path.basename(backupDir));
    const names = (await fsp.readdir(folder)).sort();
    for (const a of ['backup_vmail.tar.zst', 'backup_crypt.tar.zst', 'backup_redis.tar.zst', 'backup_rspamd.tar.zst', 'backup_postfix.tar.zst', 'backup_mariadb.tar.zst', 'mailcow.conf', '.x86_64']) assert.ok(names.includes(a), `${a} in ${names.join(',')}`);
    assert.ok(!names.includes('vmail'));
    // mailcow's style, as its other archives: absolute member names (tar -P), /vmail/...
    const members = execFileSync('tar', ['--use-compress-program=zstd -d', '-Ptf', path.join(folder, 'backup_vmail.tar.zst')], { maxBuffer: 64 << 20 }).toString().split('\n').filter(Boolean);
    assert.ok(members.length > 100 && members.every((m) => m === '/vmail/' || m.startsWith('/vmail/')), members.slice(0, 3).join(', '));
    // the stand-in script restores it (menu driven by label, prompts as the real script)
    await fsp.rm(path.join(sb.mailcow.volume('vmail'), 'example.org'), { recursive: true });
    const log = createLogger({ console: 'silent', logFile: path.join(dir, 'log', 'driver.log') });
    const res = await runMailcowRestore(log, { mailcowPath: sb.mailcow.path, location: out, folder, component: 'vmail', threads: 1, env });
    assert.equal(res.outcome, 'restored');
    assertSameTree(await treeHashes(sb.mailcow.volume('vmail')), atBackup.vmail!, 'vmail from the packed archive');
  });

  it('an old-layout backup (every file in one checksums.sha256) still verifies and restores', async () => {
    const sums = path.join(backupDir, 'checksums.sha256');
    const orig = await fsp.readFile(sums);
    const lines: string[] = [];
    await readManifest(backupDir, (e) => isManifestPart(e.path) || lines.push(formatChecksumLine(e.hash, e.path)));
    await fsp.rename(path.join(backupDir, 'manifest'), path.join(dir, 'manifest-aside'));
    await fsp.writeFile(sums, lines.sort().join('\n') + '\n');
    const vm = sb.mailcow.volume('vmail');
    const alice = 'example.com/alice';
    try {
      await fsp.rm(path.join(vm, alice, 'Maildir/cur'), { recursive: true });
      const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--mailbox', 'alice@example.com', '--mode', 'replace', '--yes', '--config', sb.configPath], env);
      assert.equal(r.code, 0, r.stderr);
      const aliceThen = new Map([...atBackup.vmail!].filter(([k]) => k.startsWith(`${alice}/`)).map(([k, v]) => [k.slice(alice.length + 1), v]));
      assertSameTree(await treeHashes(path.join(vm, alice)), aliceThen, 'alice as at backup time');
    } finally {
      await fsp.writeFile(sums, orig);
      await fsp.rename(path.join(dir, 'manifest-aside'), path.join(backupDir, 'manifest'));
    }
  });

  it('fresh host: other DB credentials and MAILDIR_SUB are reported before anything is touched', async () => {
    const fresh = await createStandinMailcow(path.join(dir, 'fresh'), { dbPass: 'OtherPass1234567890', maildirSub: 'mail', seed: 77 });
    const cfg = path.join(dir, 'fresh.env');
    await fsp.writeFile(cfg, (await fsp.readFile(sb.configPath, 'utf8')).replace(/^MAILCOW_PATH=.*$/m, `MAILCOW_PATH=${fresh.path}`), { mode: 0o600 });
    const fenv = { ...env, STANDIN_MAILCOW_PATH: fresh.path };
    const before = await treeHashes(fresh.path);
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'vmail', '--check-only', '--config', cfg], fenv);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /WARN\s+DB credentials\s+DBPASS/);
    assert.match(r.stdout, /FAIL\s+MAILDIR_SUB\s+the backup's mail lives under 'Maildir', this host reads 'mail'/);
    assert.match(r.stdout, /FAIL\s+crypt keys/);
    assert.ok(!r.stdout.includes('OtherPass1234567890'));
    const y = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--config', cfg], fenv);
    assert.equal(y.code, 4, y.stdout + y.stderr);
    assert.match(y.stdout, /WARN\s+DB credentials\s+DBNAME|WARN\s+DB credentials\s+DBPASS/);
    assertSameTree(await treeHashes(fresh.path), before, 'fresh host untouched');
  });

  it("rsync dies while the mail downloads and the archives are being checked: exit 1, one line, the host untouched, no download left; the next restore completes", async () => {
    await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 9, newFraction: 0.2, deleteFraction: 0.05, renameFraction: 0.05 });
    const before = await volumeHashes(sb);
    const actions = (await fsp.readFile(path.join(sb.mailcow.path, 'standin-actions.log'), 'utf8').catch(() => '')).length;
    // The mail's rsync (its filters hold the mail tree but not the small files) waits, says where,
    // and is killed there: as the link dying under it.
    const bin = path.join(dir, 'dying-rsync');
    const mark = path.join(dir, 'mail-rsync.pid');
    await fsp.mkdir(bin, { recursive: true });
    const real = execFileSync('sh', ['-c', 'command -v rsync'], { env: { ...process.env, ...env } }).toString().trim();
    await fsp.writeFile(
      path.join(bin, 'rsync'),
      `#!/bin/sh\nfor a in "$@"; do [ "$a" = --include=/mailcow.conf ] && exec ${real} "$@"; done\nfor a in "$@"; do if [ "$a" = '--include=/vmail/***' ]; then echo $$ > ${mark}; exec sleep 60; fi; done\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    const dying = { ...env, PATH: `${bin}:${env.PATH ?? process.env.PATH}` };
    const p = spawn(process.execPath, [RESTORE_CLI, '--backup', 'latest', '--components', 'all', '--yes', '--config', sb.configPath], { env: { ...process.env, ...dying }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((resolve) => p.on('close', (c) => resolve(c)));
    for (let i = 0; i < 600 && !existsSync(mark); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(existsSync(mark), `the mail's rsync never started:\n${out}`);
    await new Promise((r) => setTimeout(r, 300)); // the archives are being checked meanwhile
    process.kill(Number((await fsp.readFile(mark, 'utf8')).trim()), 'SIGKILL');
    const code = await exited;
    await fsp.rm(mark, { force: true });
    assert.equal(code, 1, out);
    assert.match(out, /verifying the archives while the mail downloads/);
    assert.match(out, /^error: downloading .* from the Storage Box/m);
    assert.doesNotMatch(out, /^\s+at |internal error/m);
    const after = await volumeHashes(sb);
    for (const v of VOLS) assertSameTree(after[v]!, before[v]!, `${v} untouched by the failed restore`);
    assert.equal((await fsp.readFile(path.join(sb.mailcow.path, 'standin-actions.log'), 'utf8').catch(() => '')).length, actions, 'no container was stopped');
    const restoreDir = path.join(dir, 'tmp', 'restore');
    assert.deepEqual((await fsp.readdir(restoreDir).catch(() => [])).filter((n) => n.startsWith('mailcow-')), [], 'no half download is left that could pass for a verified one');

    const again = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--config', sb.configPath], env, 180_000);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    for (const v of VOLS) assertSameTree(await treeHashes(sb.mailcow.volume(v)), atBackup[v]!, `${v} as at backup time`);
  });

  it('Ctrl-C before the restore step leaves the host untouched (exit 130)', async () => {
    const before = await volumeHashes(sb);
    const actions = (await fsp.readFile(path.join(sb.mailcow.path, 'standin-actions.log'), 'utf8').catch(() => '')).length;
    const p = spawn(process.execPath, [RESTORE_CLI, '--backup', 'latest', '--components', 'all', '--yes', '--config', sb.configPath], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let signalled = false;
    const sent = new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        out += d;
        // One Ctrl-C: a second one sent on a later chunk could land while node is already
        // tearing down (its handlers gone) and kill it by the signal.
        if (!signalled && /reading .*record/.test(out)) {
          signalled = true;
          p.kill('SIGINT');
          resolve();
        }
      };
      p.stdout.on('data', onData);
      p.stderr.on('data', onData);
    });
    const code = await new Promise<number | null>((resolve) => p.on('close', (c, sig) => resolve(c ?? (sig ? 128 : null))));
    await sent;
    assert.equal(code, 130, out);
    assert.match(out, /nothing on this host was changed|host is unchanged|untouched/i);
    const after = await volumeHashes(sb);
    for (const v of VOLS) assertSameTree(after[v]!, before[v]!, `${v} untouched by the interrupted restore`);
    assert.equal((await fsp.readFile(path.join(sb.mailcow.path, 'standin-actions.log'), 'utf8').catch(() => '')).length, actions, 'no container was stopped');
  });
});
