// The backup pipeline end to end against real parts: sshd on loopback with the Storage Box's
// restricted shell in strict mode, real rsync, tar and zstd, the stand-in mailcow script, and a
// fixture maildir. Asserts what an admin cares about: what is on the box, and what it cost.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile, appendFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildContext } from '../src/cli/context.js';
import { runBackup } from '../src/backup/run.js';
import { verifyOnBox } from '../src/backup/transfer.js';
import { BackupManifest } from '../src/plan/backup-manifest.js';
import { lockPhase } from '../src/backup/lock-phase.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { readManifest } from '../src/plan/manifest.js';
import { remoteSpec, rsyncRemoteShell } from '../src/plan/transport-args.js';
import { backup, backupsAtLeast, BOX_HASH_MODES, configWithOtherHostKey, inProcessClock, publishedOnBox, spawnBackup, treeHashes } from './support/cli.js';

let sb: Sandbox;
let dir: string;
let boxBackups: string;

/** Files of `now` whose path `prev` lacks but whose content it holds: same inode or not. */
async function renamedOnBox(prev: string, now: string): Promise<{ path: string; sameInode: boolean }[]> {
  const byHash = new Map<string, string>();
  for (const [p, h] of await treeHashes(join(boxBackups, prev, 'vmail'))) byHash.set(h, p);
  const before = await treeHashes(join(boxBackups, prev, 'vmail'));
  const out: { path: string; sameInode: boolean }[] = [];
  for (const [p, h] of await treeHashes(join(boxBackups, now, 'vmail'))) {
    const old = byHash.get(h);
    if (before.has(p) || !old || !/\/(cur|new)\//.test(p)) continue;
    const [a, b] = await Promise.all([stat(join(boxBackups, prev, 'vmail', old)), stat(join(boxBackups, now, 'vmail', p))]);
    out.push({ path: p, sameInode: a.ino === b.ino });
  }
  return out;
}

const status = async () => JSON.parse(await readFile(join(sb.dir, 'state', 'status.json'), 'utf8')) as Record<string, unknown>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-e2e-'));
  sb = await createSandbox({ dir, mailBytes: 2 * 1024 * 1024, seed: 11, strict: true });
  boxBackups = join(sb.box.root, sb.remotePath);
});

after(async () => {
  await sb?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

describe('backup to the loopback Storage Box', () => {
  test('first run publishes a backup whose every file is hash-identical to its source', async () => {
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.equal(names.length, 1);
    const folder = join(boxBackups, names[0]!);

    // The vmail tree on the box is the volume, file for file.
    const source = await treeHashes(sb.mailcow.volume('vmail'));
    const onBox = await treeHashes(join(folder, 'vmail'));
    assert.ok(source.size > 50);
    assert.deepEqual(onBox, source);

    // Every archive component is there, as a tree and its entry list (issue 19); mailcow.conf and the arch marker came along.
    const archiveFiles = (await readdir(join(folder, 'archives'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
    for (const c of ['crypt', 'redis', 'rspamd', 'postfix', 'mysql']) {
      const list = JSON.parse(await readFile(join(folder, 'archives', `${c}.tar.json`), 'utf8'));
      // Each file compressed on its own: it decompresses to the size the list says.
      for (const e of list.entries) if (e.type === 'file') assert.equal(execFileSync('zstd', ['-dc', join(folder, 'archives', c, `${e.name.replace(/^(\.?\/)+/, '')}.zst`)]).length, e.size, e.name);
    }
    assert.equal(await readFile(join(folder, 'mailcow.conf'), 'utf8'), await readFile(join(sb.mailcow.path, 'mailcow.conf'), 'utf8'));

    // The manifest covers every file and coreutils agrees with it (the README's command).
    const listed = new Map<string, string>();
    const { parts } = await readManifest(folder, (e) => listed.set(e.path, e.hash));
    assert.ok(parts > 3, 'one part per maildir folder');
    assert.equal(listed.size, source.size + archiveFiles + 2 + parts); // vmail + the archives' trees and lists + mailcow.conf + arch marker + the parts
    for (const [p, h] of source) assert.equal(listed.get(`vmail/${p}`), h, p);
    execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: folder });

    // The record keeps what the box cannot: the owner of the mail files.
    const record = JSON.parse(await readFile(join(folder, 'backup.json'), 'utf8'));
    assert.equal(record.name, names[0]);
    assert.equal(record.vmail.files, source.size);
    if (process.getuid?.() === 0) assert.deepEqual([record.vmail.owner.uid, record.vmail.owner.gid], [5000, 5000]);

    // Nothing left behind: no staging folder, no local dump (LOCAL_RETENTION_DAYS=0).
    assert.deepEqual((await readdir(boxBackups)).filter((n) => n.startsWith('.')), []);
    assert.deepEqual((await readdir(join(dir, 'tmp'))).filter((n) => !n.startsWith('.')), []);
  });

  test('verify: the box hashes 1,000 files in up to 4 sha256sum calls at once and still names the one byte flipped after upload', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mcb-verify-'));
    const ctx = buildContext({ config: sb.configPath }, new AbortController().signal, 'silent');
    try {
      const names = Array.from({ length: 1000 }, (_, i) => `verify-probe/${1700000000 + i}.M${i}P1.host,S=20:2,S`);
      await mkdir(join(dir, 'verify-probe'));
      for (const n of names) await writeFile(join(dir, n), `message ${n}\n`);
      const victim = names[617]!;
      await sb.box.setMode({ corruptAfterUpload: victim });
      await ctx.box.connect();
      const up = await ctx.exec('rsync', ['-rt', '-e', rsyncRemoteShell(ctx.box.target), `${dir}/verify-probe/`, remoteSpec(ctx.box.target, 'verify-probe/')], { what: 'upload' });
      assert.equal(up.exitCode, 0);
      const cmds = (await sb.box.commands()).length;
      const got = await ctx.box.sha256(names);
      assert.equal(got.size, names.length, 'every file hashed by the box');
      const differ = names.filter((n) => got.get(n) !== execFileSync('sha256sum', [join(dir, n)]).toString().slice(0, 64));
      assert.deepEqual(differ, [victim], 'the flipped byte, and only it');
      // The calls overlapped, never more than four at once, each within the box's line limit.
      const calls = (await sb.box.commands()).slice(cmds).filter((c) => c.command.startsWith('sha256sum '));
      assert.ok(calls.length >= 5, `${calls.length} calls`);
      const atOnce = (t: string) => calls.filter((c) => c.started <= t && t < c.time).length;
      const most = Math.max(...calls.map((c) => atOnce(c.started)));
      assert.ok(most >= 2 && most <= 4, `at most ${most} at once`);
    } finally {
      await sb.box.setMode({ corruptAfterUpload: undefined });
      await ctx.box.removeTree('verify-probe').catch(() => undefined);
      await ctx.box.close();
      await ctx.log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('verify of many files: the first ones by the box\'s sha256sum, the bulk by one rsync --checksum login per round; a byte flipped in the bulk is still named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mcb-verify-bulk-'));
    const ctx = buildContext({ config: sb.configPath }, new AbortController().signal, 'silent');
    try {
      const names = Array.from({ length: 1200 }, (_, i) => `${1700000000 + i}.M${i}P1.host,S=20:2,S`);
      await mkdir(join(dir, 'up', 'mail', 'cur'), { recursive: true });
      const entries = new Map<string, { path: string; hash: string; size: number; mtimeMs: number }>();
      for (const n of names) {
        await writeFile(join(dir, 'up', 'mail', 'cur', n), `message ${n}\n`);
        const st = await stat(join(dir, 'up', 'mail', 'cur', n));
        const path = `mail/cur/${n}`;
        entries.set(path, { path, hash: execFileSync('sha256sum', [join(dir, 'up', 'mail', 'cur', n)]).toString().slice(0, 64), size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
      }
      const victim = names[900]!;
      await sb.box.setMode({ corruptAfterUpload: victim });
      await ctx.box.connect();
      const up = await ctx.exec('rsync', ['-rt', '-e', rsyncRemoteShell(ctx.box.target), `${dir}/up/`, remoteSpec(ctx.box.target, 'verify-bulk/')], { what: 'upload' });
      assert.equal(up.exitCode, 0);
      const verify = () => verifyOnBox(ctx, 'verify-bulk', new BackupManifest(new Map(entries)), entries.keys(), [{ root: join(dir, 'up', 'mail'), prefix: 'mail' }], dir, () => true, 500);
      const cmds = (await sb.box.commands()).length;
      await assert.rejects(verify(), (e: Error) => /the Storage Box holds 1 file that differ from what was sent \(first: mail\/cur\/1700000900\./.test(e.message));
      const calls = (await sb.box.commands()).slice(cmds);
      const hashed = calls.filter((c) => c.command.startsWith('sha256sum ')).flatMap((c) => c.command.split(' ').filter((w) => w.startsWith('verify-bulk/')));
      assert.equal(hashed.length, 500, 'the first 500 by sha256sum');
      assert.ok(hashed.every((p) => names.indexOf(p.split('/').pop()!) < 500));
      assert.equal(calls.filter((c) => c.command.startsWith('rsync --server')).length, 1, 'the other 700 in one rsync login');

      // Put right: every file verified, and the outcome says how many the box's rsync vouched for.
      await writeFile(join(sb.box.root, 'verify-bulk', 'mail', 'cur', victim), `message ${victim}\n`);
      const v = await verify();
      assert.deepEqual([v.checked, v.method, v.viaRsyncChecksum], [1200, 'sha256sum', 700]);
    } finally {
      await sb.box.setMode({ corruptAfterUpload: undefined });
      await ctx.box.removeTree('verify-bulk').catch(() => undefined);
      await ctx.box.close();
      await ctx.log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('second run after a day of mail sends about the change and hard-links the rest', async () => {
    const first = (await backupsAtLeast(sb, 1)).at(-1)!;
    const change = await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 5, newFraction: 0.05, deleteFraction: 0.01, renameFraction: 0.02 });
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.equal(names.at(-2), first);
    const second = names.at(-1)!;

    const source = await treeHashes(sb.mailcow.volume('vmail'));
    assert.deepEqual(await treeHashes(join(boxBackups, second, 'vmail')), source);

    // Unchanged messages are the same inode as yesterday's: stored once.
    let linked = 0;
    let unchanged = 0;
    const before = await treeHashes(join(boxBackups, first, 'vmail'));
    for (const [p, h] of source) {
      if (before.get(p) !== h || !p.includes('/cur/')) continue;
      unchanged++;
      const [a, b] = await Promise.all([stat(join(boxBackups, first, 'vmail', p)), stat(join(boxBackups, second, 'vmail', p))]);
      if (a.ino === b.ino) linked++;
    }
    assert.ok(unchanged > 20);
    assert.equal(linked, unchanged);

    // Renamed messages (flag changes) are hard links to yesterday's copy: they cost no storage.
    assert.ok(change.renamed > 0);
    const renamed = await renamedOnBox(first, second);
    assert.equal(renamed.length, change.renamed);
    for (const x of renamed) assert.equal(x.sameInode, true, `${x.path} was stored again`);
    // Unchanged manifest parts are links too (the mutation leaves some folders alone).
    const parts = await readdir(join(boxBackups, second, 'manifest'));
    let partsLinked = 0;
    for (const p of parts) if ((await stat(join(boxBackups, second, 'manifest', p))).nlink > 1) partsLinked++;
    assert.ok(partsLinked > 0 && partsLinked < parts.length, `${partsLinked} of ${parts.length} parts linked`);

    // Bytes on the wire: the new mail plus the small archives mailcow's script makes anew,
    // far from a full re-send of the mail.
    const s = await status();
    let archiveBytes = 0;
    for (const e of await readdir(join(boxBackups, second, 'archives'), { recursive: true, withFileTypes: true })) if (e.isFile()) archiveBytes += (await stat(join(e.parentPath, e.name))).size;
    const sent = s.bytesSent as number;
    assert.ok(sent >= change.newBytes * 0.9, `sent ${sent} < new mail ${change.newBytes}`);
    assert.ok(sent < change.newBytes + change.renamedBytes + archiveBytes + 200_000, `sent ${sent} bytes for ${change.newBytes} bytes of new mail`);
    assert.match(r.stderr + r.stdout, /hard links\s+working/);
  });

  test('mail delivered and deleted between the hashing and the upload: the backup holds what the box got, every file verified', async () => {
    const vmail = sb.mailcow.volume('vmail');
    const source0 = await treeHashes(vmail);
    const victim = [...source0.keys()].find((p) => p.includes('/cur/'))!;
    const folder = join(vmail, victim.split('/').slice(0, -1).join('/'));
    const delivered = `${folder}/${Date.now()}.M1P1.late,S=5000:2,`;
    // A symlink in the volume is skipped, as the manifest skips it.
    await symlink('/etc/hostname', join(folder, 'a-symlink'));
    const ctx = buildContext({ config: sb.configPath }, new AbortController().signal, 'silent');
    ctx.now = inProcessClock();
    const exec = ctx.exec;
    // The moment between the manifest and rsync's walk of the mail tree: dovecot delivers one
    // message and expunges another.
    ctx.exec = (async (cmd: string, args: string[], opts: unknown) => {
      if (cmd === 'rsync' && args.some((a) => a === '-ii')) {
        await writeFile(delivered, randomBytes(5000));
        await rm(join(vmail, victim));
      }
      return exec(cmd, args, opts as never);
    }) as typeof exec;
    // In this process, with the sandbox's PATH (its docker stand-in) as the CLI runs get it.
    const saved = { ...process.env };
    Object.assign(process.env, sb.env);
    const summary = await runBackup(ctx, await lockPhase(ctx)).finally(async () => {
      for (const k of Object.keys(sb.env)) if (saved[k] === undefined) delete process.env[k];
      Object.assign(process.env, saved);
      await ctx.log.close();
    });
    await rm(join(folder, 'a-symlink'));
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    const made = join(boxBackups, names.at(-1)!);
    assert.equal(summary.backupName, names.at(-1));
    // The box holds the volume as rsync found it, and the manifest describes exactly that.
    const onBox = await treeHashes(join(made, 'vmail'));
    assert.deepEqual(onBox, await treeHashes(vmail));
    assert.ok(onBox.has(delivered.slice(vmail.length + 1)) && !onBox.has(victim));
    const listed = new Map<string, string>();
    await readManifest(made, (e) => listed.set(e.path, e.hash));
    for (const [p, h] of onBox) assert.equal(listed.get(`vmail/${p}`), h, `manifest of ${p}`);
    assert.equal([...listed.keys()].filter((p) => p.startsWith('vmail/')).length, onBox.size);
    execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: made });
    assert.ok(summary.verifiedOnBox! >= 1);
  });

  // Against both answers a box gives to sha256sum: without it, rsync --checksum must catch the
  // flipped byte (same size, same mtime) by making the box's rsync read it.
  BOX_HASH_MODES.forEach((mode, i) => {
    test(`a byte flipped on the box between upload and verification: nothing is published, exit 5; the next run succeeds, checks everything the dead staging folder lent it, and removes it (${mode.name})`, async () => {
      await sb.box.setMode({ noSha256sum: mode.noSha256sum });
      try {
        // Corrupt a message this run sends (one it hard-links is the later scrub's to find).
        const old = await treeHashes(sb.mailcow.volume('vmail'));
        await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 6 + i, newFraction: 0.02, deleteFraction: 0, renameFraction: 0 });
        const fresh = [...(await treeHashes(sb.mailcow.volume('vmail'))).keys()].find((p) => !old.has(p) && /\/(cur|new)\//.test(p));
        assert.ok(fresh);
        await sb.box.setMode({ corruptAfterUpload: fresh });
        const before = await publishedOnBox(sb.box.root, sb.remotePath);
        const cmds = (await sb.box.commands()).length;
        const r = await backup(['run', '--config', sb.configPath], sb.env);
        assert.equal(r.code, 5, r.stderr);
        assert.match(r.stderr, /differ from what was sent/);
        assert.ok(r.stderr.includes(fresh), r.stderr);
        assert.equal((await sb.box.readState()).corruptAfterUpload, undefined, 'the box flipped the byte');
        assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
        assert.equal((await readdir(boxBackups)).filter((n) => n.startsWith('.incomplete-')).length, 1);
        assert.equal((await status()).result, 'failed');
        const hashing = (await sb.box.commands()).slice(cmds).filter((c) => c.command.startsWith('sha256sum '));
        if (mode.noSha256sum) assert.deepEqual(hashing.map((c) => c.exit), [8], 'probed once, refused, never relied on');
        else assert.ok(hashing.some((c) => c.exit === 0));

        // The next run, with the dead staging folder of this one on the box.
        const next = await backup(['run', '--config', sb.configPath], sb.env);
        assert.equal(next.code, 0, next.stderr);
        const names = await publishedOnBox(sb.box.root, sb.remotePath);
        assert.equal(names.length, before.length + 1);
        assert.deepEqual(await treeHashes(join(boxBackups, names.at(-1)!, 'vmail')), await treeHashes(sb.mailcow.volume('vmail')));
        assert.deepEqual((await readdir(boxBackups)).filter((n) => n.startsWith('.')), []);
        // The report names the method that vouched for the backup.
        assert.match(next.stdout + next.stderr, mode.noSha256sum ? /published and verified on the Storage Box with rsync --checksum/ : /published and verified on the Storage Box with sha256sum/);
        execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: join(boxBackups, names.at(-1)!) });
      } finally {
        await sb.box.setMode({ noSha256sum: false, corruptAfterUpload: undefined });
      }
    });
  });

  test('a box on which hard links fail is reported, not hidden', async () => {
    await backupsAtLeast(sb, 1);
    await sb.box.setMode({ hardlinksFail: true });
    try {
      const r = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /hard links\s+NOT WORKING/);
      const s = await status();
      assert.ok((s.warnings as string[]).some((w) => /hard links do not work/.test(w)));
    } finally {
      await sb.box.setMode({ hardlinksFail: false });
    }
  });

  test('a box whose sftp refuses hard links: renamed messages are stored again, the backup stays whole', async () => {
    await backupsAtLeast(sb, 1);
    await sb.box.setMode({ sftpHardlinkRefused: true });
    try {
      const change = await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 8, newFraction: 0.01, deleteFraction: 0, renameFraction: 0.05 });
      assert.ok(change.renamed > 0);
      const r = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr.match(/refused a hard link through sftp/g)?.length, 1, r.stderr);
      const names = await publishedOnBox(sb.box.root, sb.remotePath);
      const [prev, now] = names.slice(-2) as [string, string];
      assert.deepEqual(await treeHashes(join(boxBackups, now, 'vmail')), await treeHashes(sb.mailcow.volume('vmail')));
      const renamed = await renamedOnBox(prev, now);
      assert.equal(renamed.length, change.renamed);
      assert.ok(renamed.every((x) => !x.sameInode), 'without sftp ln they are copies');
      execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: join(boxBackups, now) });
    } finally {
      await sb.box.setMode({ sftpHardlinkRefused: false });
    }
  });

  test('mailcow script exits 0 with an archive missing or truncated: the run fails, nothing published', async () => {
    for (const [k, v] of [['STANDIN_FAIL_COMPONENT', 'redis'], ['STANDIN_TRUNCATE_COMPONENT', 'mysql']] as const) {
      const before = await publishedOnBox(sb.box.root, sb.remotePath);
      const r = await backup(['run', '--config', sb.configPath], { ...sb.env, [k]: v });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, v === 'redis' ? /redis: backup_redis\.tar\.zst is missing/ : /mysql: .*backup_mariadb\.tar\.zst is damaged/);
      assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
      assert.deepEqual((await readdir(join(dir, 'tmp'))).filter((n) => n.startsWith('run-')), [], 'temp folder cleaned');
    }
  });

  test('LOCAL_RETENTION_DAYS keeps the local dump of a verified backup', async () => {
    const cfg = join(dir, 'keep-local.env');
    await writeFile(cfg, (await readFile(sb.configPath, 'utf8')) + 'LOCAL_RETENTION_DAYS=3\n', { mode: 0o600 });
    const r = await backup(['run', '--config', cfg], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    const newest = names[names.length - 1]!;
    const local = join(dir, 'tmp', newest);
    assert.deepEqual(await treeHashes(local), new Map([...(await treeHashes(join(boxBackups, newest)))].filter(([p]) => !p.startsWith('vmail/') && !p.startsWith('manifest/') && !['checksums.sha256', 'backup.json'].includes(p))));
    assert.equal((await stat(join(dir, 'tmp'))).mode & 0o777, 0o700);
    // Back to LOCAL_RETENTION_DAYS=0: the next verified run removes it.
    assert.equal((await backup(['run', '--config', sb.configPath], sb.env)).code, 0);
    assert.deepEqual((await readdir(join(dir, 'tmp'))).filter((n) => n.startsWith('mailcow-')), []);
  });

  test('secrets from mailcow.conf never reach the log', async () => {
    await backupsAtLeast(sb, 1);
    const log = await readFile(join(dir, 'log', 'mailcow-backup.log'), 'utf8');
    assert.ok(log.length > 1000);
    // Lines from before the lock (when the file is opened) are there too, in order, with their time.
    const start = log.search(/^\S+Z INFO backup-to-hetzner \S+: starting a backup of /m);
    assert.ok(start >= 0 && log.indexOf('published ', start) > start, log.slice(0, 500));
    for (const k of ['DBPASS', 'DBROOT', 'REDISPASS']) assert.ok(!log.includes(sb.mailcow.conf[k]!), `${k} leaked into the log`);
  });

  test('a second run while one holds the lock exits 75 at once', async () => {
    const slow = spawnBackup(['run', '--debug', '--config', sb.configPath], { ...sb.env, STANDIN_SLOW_SECONDS: '1' });
    // The event, not a guess at its time: the first run is past the lock, inside its dump.
    await slow.waitFor(/phase dump: start/);
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 75, r.stderr);
    assert.match(r.stderr, /another backup run holds the lock/);
    assert.equal((await slow.exit).code, 0, slow.stderr());
  });

  test('a lock left by a killed run is taken over and its leftovers removed', async () => {
    const run = spawnBackup(['run', '--debug', '--config', sb.configPath], { ...sb.env, STANDIN_SLOW_SECONDS: '5' });
    // Kill it once mailcow's script runs in its temp folder, however loaded the machine is.
    await run.waitFor(/mailcow: Using \S+ as backup\/restore location/);
    // SIGKILL to the whole process group, as systemd kills a unit's cgroup.
    process.kill(-run.p.pid!, 'SIGKILL');
    await run.exit;
    assert.ok((await readdir(join(dir, 'tmp'))).some((n) => n.startsWith('run-')), 'the killed run left its temp folder');
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /taking over: the lock of run \d+ .* no longer exists/);
    assert.deepEqual((await readdir(join(dir, 'tmp'))).filter((n) => n.startsWith('run-')), []);
  });

  test('a box presenting another host key is refused with exit 4 and names the problem', async () => {
    const { config: cfg, pinnedPub } = await configWithOtherHostKey(sb, dir);
    const r = await backup(['run', '--config', cfg], sb.env);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /presented a host key that is not pinned/);
    // It names the key the box sent and the one that was expected.
    assert.ok(r.stderr.includes(`it sent ${sb.box.hostKeyFingerprint}`), r.stderr);
    const pinnedFp = execFileSync('ssh-keygen', ['-lf', pinnedPub]).toString().split(' ')[1]!;
    assert.ok(r.stderr.includes(`pinned: ${pinnedFp}`), r.stderr);
  });

  for (const mode of BOX_HASH_MODES) {
    test(`check reports every precondition, including hard links, the refused-command probe and the verification method (${mode.name})`, async () => {
      await sb.box.setMode({ noSha256sum: mode.noSha256sum });
      const r = await backup(['check', '--config', sb.configPath], sb.env);
      await sb.box.setMode({ noSha256sum: false });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      for (const t of ['mailcow', 'vmail volume', 'ssh key', 'connection', 'box commands', 'hard links', 'sftp rename', 'box space']) {
        assert.match(r.stdout, new RegExp(`^OK +${t} `, 'm'));
      }
      // The sandbox earns exactly these warnings: the stand-in's mail is not mail_crypt-encrypted,
      // ENCRYPT_RECIPIENTS is unset, and the loopback box's key is pinned but is not Hetzner's.
      assert.match(r.stdout, /^WARN +host key +pinned SHA256:\S+, which is not one of Hetzner's published Storage Box keys/m);
      const warned = r.stdout.split('\n').filter((l) => l.startsWith('WARN')).map((l) => l.split(/ {2,}/)[1]);
      // The loopback box has no ZFS snapshots: nothing protects the backups from this host's key.
      assert.deepEqual(warned, ['mail_crypt', 'encryption', 'host key', ...(mode.noSha256sum ? ['verification'] : []), 'snapshots'], r.stdout);
      assert.match(r.stdout, /^OK +hard links +rsync --link-dest and the box's cp -al make hard links: unchanged files cost no space, and a run sends only the mail that changed$/m);
      if (mode.noSha256sum) assert.match(r.stdout, /^WARN +verification +the box refuses sha256sum: each run verifies with rsync --checksum instead .*'verify' downloads older backups/m);
      else assert.match(r.stdout, /^OK +verification +sha256sum: the box hashes its own files/m);
      assert.doesNotMatch(r.stdout, /^FAIL/m);
      assert.deepEqual((await readdir(boxBackups)).filter((n) => n.startsWith('.probe')), [], 'the probe is removed');
    });
  }

  test('list shows the published backups newest first, and --json parses', async () => {
    await backupsAtLeast(sb, 2);
    const r = await backup(['list', '--json', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { name: string; state: string }[];
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.ok(names.length >= 2);
    assert.deepEqual(list.map((b) => b.name), [...names].reverse());
    assert.ok(list.every((b) => b.state === 'verified'));
  });

  test('retention removes old backups, keeps the newest, and ignores names it did not create', async () => {
    const names = await backupsAtLeast(sb, 2);
    // Age the oldest backup by renaming it to a date far in the past, and drop in a stranger.
    const { rename, mkdir } = await import('node:fs/promises');
    await rename(join(boxBackups, names[0]!), join(boxBackups, 'mailcow-2020-01-01-03-00-00'));
    await mkdir(join(boxBackups, 'mailcow-not-ours; rm -rf x'));
    await appendFile(join(boxBackups, 'notes.txt'), 'mine\n');
    const dry = await backup(['prune', '--dry-run', '--config', sb.configPath], sb.env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^remove mailcow-2020-01-01-03-00-00 /m);
    assert.match(dry.stdout, /^ignore .*mailcow-not-ours/m);
    assert.ok((await readdir(boxBackups)).includes('mailcow-2020-01-01-03-00-00'), 'dry run deleted nothing');
    const r = await backup(['prune', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const left = await readdir(boxBackups);
    assert.ok(!left.includes('mailcow-2020-01-01-03-00-00'));
    assert.ok(left.includes('mailcow-not-ours; rm -rf x') && left.includes('notes.txt'));
    assert.equal((await publishedOnBox(sb.box.root, sb.remotePath)).length, names.length - 1);
  });
});

describe('refusals before anything is written', () => {
  test('vmail without crypt is refused with exit 2 unless allowed', async () => {
    const cfg = join(dir, 'nocrypt.env');
    await writeFile(cfg, (await readFile(sb.configPath, 'utf8')).replace(/^BACKUP_COMPONENTS=.*$/m, 'BACKUP_COMPONENTS=vmail,mysql'), { mode: 0o600 });
    const r = await backup(['run', '--config', cfg], sb.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /vmail without crypt.*ALLOW_VMAIL_WITHOUT_CRYPT=true/);
  });

  test('not enough room for the dump: exit 4 with both numbers, nothing written', async () => {
    // A sparse file makes the redis volume look larger than any disk here, without using space.
    const big = join(sb.mailcow.volume('redis'), 'huge.rdb');
    const { truncate } = await import('node:fs/promises');
    await writeFile(big, '');
    await truncate(big, 1024 ** 4);
    try {
      const before = await publishedOnBox(sb.box.root, sb.remotePath);
      const r = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /not enough space in .*: the dump needs up to [\d.]+ TiB .*, [\d.]+ [KMGT]?i?B free/);
      assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
    } finally {
      await rm(big);
    }
  });
});

describe('notice and monitoring through the real commands', () => {
  test('SMTP down: the backup still exits 0, the log says the report was not delivered; status is healthy', async () => {
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const cfg = join(dir, 'mail.env');
    await writeFile(cfg, (await readFile(sb.configPath, 'utf8')) + `EMAIL_NOTIFICATIONS=yes\nNOTIFICATION_EMAIL=admin@example.com\nSMTP_HOST=127.0.0.1\nSMTP_PORT=${port}\n`, { mode: 0o600 });
    const r = await backup(['run', '--config', cfg], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /report e-mail was NOT delivered/);
    const st = await backup(['status', '--config', cfg], sb.env);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const t = await backup(['test-email', '--config', cfg], sb.env);
    assert.equal(t.code, 1, t.stdout + t.stderr);
  });

  test('status is unhealthy (exit 6) when the newest backup is older than STALE_AFTER_HOURS', async () => {
    // Its own healthy starting point: a fresh successful run.
    assert.equal((await backup(['run', '--config', sb.configPath], sb.env)).code, 0);
    const st = await backup(['status', '--config', sb.configPath], sb.env);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const cfg = join(dir, 'stale.env');
    await writeFile(cfg, (await readFile(sb.configPath, 'utf8')) + 'STALE_AFTER_HOURS=1\n', { mode: 0o600 });
    // Age every backup on the box: rename each to a name at least three hours back.
    const { rename } = await import('node:fs/promises');
    const { backupNameFor } = await import('../src/plan/names.js');
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    for (const [i, n] of names.entries()) await rename(join(boxBackups, n), join(boxBackups, backupNameFor(new Date(Date.now() - (3 * 3600 + names.length - i) * 1000))));
    const stale = await backup(['status', '--config', cfg], sb.env);
    assert.equal(stale.code, 6, stale.stdout + stale.stderr);
  });
});

