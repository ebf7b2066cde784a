// A restore fetches only what this host lacks: the live vmail volume (rollback), a standby
// mirror's copy of an earlier backup (failover) and a mirror copy that was tampered with, on the
// sandbox (real sshd box stand-in, real rsync). Bytes from the box are asserted against the size
// of what changed, never against the whole backup.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateDatabases } from '../src/sandbox/mailcow-standin.js';
import { mutateMaildir, seededBytes } from '../src/sandbox/maildir-fixture.js';
import { basisOrder, linkableFromMirror } from '../src/plan/restore-basis.js';
import { downloadFilters, exactFilters } from '../src/restore/download.js';
import { badFiles, hashAhead } from '../src/restore/verify-local.js';
import { assertSameTree, BACKUP_CLI, flipByte, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';

const VOLS = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;
const UNIT: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
const KiB = 1024;

/** The line the restore prints, read back into numbers (as exact as its rounding). */
function fetched(out: string): { box: number; host: number; line: string } {
  const m = /^fetched ([\d.]+) (B|KiB|MiB|GiB) from the Storage Box, ([\d.]+) (B|KiB|MiB|GiB) from this host.*$/m.exec(out);
  assert.ok(m, `no "fetched … from the Storage Box, … from this host" line in:\n${out}`);
  return { box: Number(m[1]) * UNIT[m[2]!]!, host: Number(m[3]) * UNIT[m[4]!]!, line: m[0] };
}

/** Regular files under root: relative path → size and mtime. */
async function files(root: string, rel = ''): Promise<Map<string, { size: number; mtimeMs: number }>> {
  const out = new Map<string, { size: number; mtimeMs: number }>();
  for (const e of await fsp.readdir(path.join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await files(root, p)) out.set(k, v);
    else if (e.isFile()) {
      const st = await fsp.stat(path.join(root, p));
      out.set(p, { size: st.size, mtimeMs: Math.floor(st.mtimeMs / 1000) });
    }
  }
  return out;
}

/** Every file under root: relative path → "inode uid:gid mode nlink mtime". */
async function inodes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await fsp.readdir(root, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    const st = await fsp.lstat(p);
    out.set(path.relative(root, p), `${st.ino} ${st.uid}:${st.gid} ${st.mode.toString(8)} ${st.nlink} ${st.mtimeMs}`);
  }
  return out;
}

const sum = (m: Map<string, { size: number }>, keep: (p: string) => boolean = () => true) => [...m].filter(([p]) => keep(p)).reduce((n, [, v]) => n + v.size, 0);

describe('restore basis (pure)', () => {
  it('offers the mirror of the same backup first, then the live volume, then older mirrors newest first; foreign names never', () => {
    const order = basisOrder({ name: 'mailcow-2026-11-21-03-00-00', mirrors: ['mailcow-2026-11-19-03-00-00', 'mailcow-2026-11-21-03-00-00', 'mailcow-2026-11-20-03-00-00', 'mailcow-bad', '.incomplete-mailcow-2026-11-22-03-00-00'], live: '/scratch' });
    assert.deepEqual(order.map((b) => b.name), ['mailcow-2026-11-21-03-00-00', '/scratch', 'mailcow-2026-11-20-03-00-00', 'mailcow-2026-11-19-03-00-00']);
  });

  it('links from a standby copy only maildir message files: dovecot writes its indexes, lists and sieve scripts in place', () => {
    for (const p of ['vmail/example.org/alice/Maildir/cur/1733.M1P2.host,S=10:2,S', 'vmail/example.org/alice/Maildir/.Sent/new/1733.M2P3.host', 'vmail/example.org/alice/Maildir/.cur/cur/x']) assert.equal(linkableFromMirror(p), true, p);
    for (const p of ['vmail/example.org/alice/Maildir/dovecot.index.log', 'vmail/example.org/alice/Maildir/dovecot-uidlist', 'vmail/example.org/alice/Maildir/.Sent/dovecot.index.cache', 'vmail/example.org/alice/Maildir/tmp/1733.M3', 'vmail/example.org/alice/sieve/main.sieve', 'vmail/example.org/alice/Maildir/cur', 'archives/mysql/cur/x', 'backup_vmail.tar.zst']) assert.equal(linkableFromMirror(p), false, p);
  });
  it('a hash taken ahead of the download counts only while the file is the same inode: a file replaced or rewritten meanwhile is hashed again', async () => {
    const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'ahead-'));
    try {
      const names = ['kept', 'replaced', 'rewritten'];
      for (const n of names) await fsp.writeFile(path.join(d, n), `good ${n}`);
      const sums = new Map(await Promise.all(names.map(async (n) => [n, (await treeHashes(d)).get(n)!] as const)));
      const ahead = await hashAhead(d, names);
      assert.deepEqual([...ahead.keys()].sort(), [...names].sort());
      // As rsync updates a file: a new one renamed over it. And a write into the file itself.
      await fsp.writeFile(path.join(d, 'replaced.tmp'), 'evil replaced');
      await fsp.rename(path.join(d, 'replaced.tmp'), path.join(d, 'replaced'));
      await fsp.writeFile(path.join(d, 'rewritten'), 'evil rewritten');
      const bad = await badFiles(d, sums, names, undefined, ahead);
      assert.deepEqual(bad.map((b) => b.path).sort(), ['replaced', 'rewritten']);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });
  it("the archives' download leaves vmail/ alone and the mail's download leaves everything else alone, both with --delete (real rsync)", async () => {
    const t = await fsp.mkdtemp(path.join(os.tmpdir(), 'split-filters-'));
    try {
      const put = async (root: string, p: string, text = p) => {
        await fsp.mkdir(path.dirname(path.join(t, root, p)), { recursive: true });
        await fsp.writeFile(path.join(t, root, p), text);
      };
      // The box's folder of an encrypted backup with the tree layout.
      for (const p of ['mailcow.conf.age', 'checksums.sha256', 'backup.json', 'manifest/vmail-1.sha256.gz', 'archives/mysql.tar.json', 'archives/mysql/a.zst', 'vmail/a.org/bob/Maildir/cur/1', 'vmail/a.org/bob/Maildir/dovecot-uidlist']) await put('box', p);
      // Links from a standby copy, made while the archives download.
      for (const p of ['vmail/a.org/bob/Maildir/cur/1', 'vmail/a.org/bob/Maildir/cur/gone-from-the-backup']) await put('dst', p, 'here');
      const rsync = (filters: string[]) => execFileSync('rsync', ['-rlpt', '--delete', ...filters, `${t}/box/`, `${t}/dst/`]);
      rsync(downloadFilters({ components: ['mysql'], mailboxDirs: [], vmailDir: 'vmail' }));
      const afterArchives = await files(path.join(t, 'dst'));
      assert.ok(afterArchives.has('archives/mysql/a.zst') && afterArchives.has('mailcow.conf.age'));
      assert.ok(afterArchives.has('vmail/a.org/bob/Maildir/cur/gone-from-the-backup') && !afterArchives.has('vmail/a.org/bob/Maildir/dovecot-uidlist'), 'the mail is not the first download\'s');
      // What verify makes of the archives while the mail's download runs.
      for (const p of ['mailcow.conf', 'backup_mysql.tar.zst']) await put('dst', p, 'here');
      rsync(downloadFilters({ components: ['vmail'], mailboxDirs: [], vmailDir: 'vmail', archives: [], meta: false }));
      const got = await files(path.join(t, 'dst'));
      for (const p of ['mailcow.conf', 'backup_mysql.tar.zst']) assert.ok(got.has(p), `${p} (made from the download, not on the box) survives the mail's --delete`);
      assert.ok(!got.has('vmail/a.org/bob/Maildir/cur/gone-from-the-backup'), 'a file the backup lacks goes from the mail tree');
      assert.ok(got.has('vmail/a.org/bob/Maildir/dovecot-uidlist'));
      assert.equal(await fsp.readFile(path.join(t, 'dst', 'mailcow.conf'), 'utf8'), 'here');
    } finally {
      await fsp.rm(t, { recursive: true, force: true });
    }
  });
  it('fetches again exactly the named files, wildcard characters in their names taken literally (real rsync)', async () => {
    const t = await fsp.mkdtemp(path.join(os.tmpdir(), 'exact-filters-'));
    try {
      const want = ['vmail/a.org/bob/Maildir/cur/1.M1,S=5:2,S', 'vmail/a.org/bob/Maildir/.[x]*?/cur/2', 'backup_redis.tar.zst'];
      const others = ['vmail/a.org/bob/Maildir/cur/3', 'vmail/a.org/bob/Maildir/.[x]ab/cur/2', 'vmail/a.org/bob/Maildir/.x*?/cur/2', 'vmail/b.org/eve/Maildir/cur/1', 'backup_crypt.tar.zst'];
      for (const p of [...want, ...others]) {
        await fsp.mkdir(path.dirname(path.join(t, 'src', p)), { recursive: true });
        await fsp.writeFile(path.join(t, 'src', p), p);
      }
      execFileSync('rsync', ['-rlpt', ...exactFilters(want), `${t}/src/`, `${t}/dst/`]);
      assert.deepEqual([...(await files(path.join(t, 'dst'))).keys()].sort(), [...want].sort());
    } finally {
      await fsp.rm(t, { recursive: true, force: true });
    }
  });
});

describe('a restore fetches only what this host lacks', { timeout: 600_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let env: Record<string, string>;
  let standby: string;
  const boxFolder = (name: string) => path.join(sb.box.root, sb.remotePath, name);
  const vm = () => sb.mailcow.volume('vmail');
  const published = async () => (await fsp.readdir(path.join(sb.box.root, sb.remotePath))).filter((n) => /^mailcow-[\d-]+$/.test(n)).sort();
  const restore = (args: string[]) => runCli(RESTORE_CLI, [...args, '--yes', '--config', sb.configPath], env, 180_000);
  /** What a standby mirror holds: a complete copy of the backup folder as on the box. */
  const mirror = (name: string) => execFileSync('cp', ['-a', boxFolder(name), path.join(standby, name)]);

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'restore-basis-'));
    standby = path.join(dir, 'standby');
    await fsp.mkdir(standby);
    sb = await createSandbox({ dir, mailBytes: 6 * 1024 * 1024, seed: 21, config: { STANDBY_DIR: standby } });
    env = { ...sb.env, STANDIN_PROMPTS: 'tty' };
    const r = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('rollback after damage to two mailboxes fetches about their size from the box; the volume is the backup again', async () => {
    const atBackup = await treeHashes(vm());
    const all = await files(vm());
    const sizeOf = (box: string) => sum(all, (p) => p.startsWith(`${box}/`));
    const boxes = [...new Set([...all.keys()].map((p) => p.split('/').slice(0, 2).join('/')))].sort((a, b) => sizeOf(a) - sizeOf(b));
    const [lost, garbled] = [boxes[0]!, boxes[1]!];
    const damaged = sum(all, (p) => p.startsWith(`${lost}/`) || p.startsWith(`${garbled}/`));
    assert.ok(damaged < sum(all) / 3, `two of ${boxes.length} mailboxes (${damaged} of ${sum(all)} bytes)`);
    await fsp.rm(path.join(vm(), lost), { recursive: true });
    // garbled: every file rewritten with other bytes of the same size (a client gone wrong)
    for (const [p, f] of all) if (p.startsWith(`${garbled}/`)) await fsp.writeFile(path.join(vm(), p), seededBytes(f.size, 'garbled', p));
    // What the host gained since the backup goes, as a full vmail restore always did.
    await fsp.mkdir(path.join(vm(), 'stray.example', 'eve', 'Maildir', 'cur'), { recursive: true });
    await fsp.writeFile(path.join(vm(), 'stray.example', 'eve', 'Maildir', 'cur', '1.M1'), 'not in the backup');

    const r = await restore(['--backup', 'latest', '--components', 'vmail']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertSameTree(await treeHashes(vm()), atBackup, 'vmail as at backup time');
    assert.ok(!existsSync(path.join(vm(), 'stray.example')), 'the folder the backup lacks is gone from the volume');
    assert.deepEqual(await fsp.readdir(path.join(dir, 'tmp', 'restore')), [], 'nothing of the replaced volume content is left in the restore folder');
    const f = fetched(r.stdout);
    assert.ok(f.box >= damaged * 0.9 && f.box <= damaged * 1.05 + 200 * KiB, `from the box ${f.box} B for ${damaged} B of damaged mail: ${f.line}`);
    assert.ok(f.host >= (sum(all) - damaged) * 0.95, `from this host ${f.host} B of ${sum(all) - damaged} B undamaged: ${f.line}`);
    assert.match(f.line, /from this host \(the live vmail volume \//);
  });

  it('failover with a mirror copy of the previous backup at STANDBY_DIR fetches only the change since', async () => {
    const [day1] = await published();
    mirror(day1!);
    await mutateMaildir(vm(), { seed: 22, newFraction: 0.05, deleteFraction: 0.02, renameFraction: 0.02 });
    await mutateDatabases(sb.mailcow, 22);
    const b = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], sb.env);
    assert.equal(b.code, 0, b.stderr);
    const day2 = (await published()).at(-1)!;
    assert.notEqual(day2, day1);
    const atDay2: Record<string, Map<string, string>> = {};
    for (const v of VOLS) atDay2[v] = await treeHashes(sb.mailcow.volume(v));
    // The change since the mirror: files of day 2 the mirror lacks by path, size and time.
    const inMirror = await files(path.join(standby, day1!));
    const onBox = await files(boxFolder(day2));
    const isNew = (p: string) => {
      const m = inMirror.get(p);
      const n = onBox.get(p)!;
      return !m || m.size !== n.size || m.mtimeMs !== n.mtimeMs;
    };
    const change = sum(onBox, isNew);
    const newMail = sum(onBox, (p) => p.startsWith('vmail/') && isNew(p));
    const vmailBytes = sum(onBox, (p) => p.startsWith('vmail/'));
    assert.ok(newMail < vmailBytes / 5, `a day's new mail ${newMail} B of ${vmailBytes} B`);
    // A standby host's fresh mailcow holds no mail of its own.
    for (const n of await fsp.readdir(vm())) await fsp.rm(path.join(vm(), n), { recursive: true });
    const mirrorCopy = path.join(standby, day1!);
    const mirrorBefore = await inodes(mirrorCopy);
    const mirrorBytes = await treeHashes(mirrorCopy);

    const r = await restore(['--backup', 'latest', '--components', 'all']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const v of VOLS) assertSameTree(await treeHashes(sb.mailcow.volume(v)), atDay2[v]!, `${v} as in ${day2}`);
    // The verified tree was moved into the volume, not written a second time.
    const mailFiles = [...atDay2.vmail!.keys()].length;
    assert.match(r.stderr + r.stdout, new RegExp(`vmail: moved the verified ${mailFiles} files into ${vm().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(same filesystem: renamed, not copied\\)`));
    assert.doesNotMatch(r.stderr + r.stdout, /vmail: copying/);
    // The mirror lent its unchanged message files by hard link (dovecot never writes into one),
    // everything else by copy: the volume shares no inode with it that dovecot writes in place.
    const mirrorInodes = new Map([...mirrorBefore].map(([p, x]) => [x.split(' ')[0]!, p]));
    let shared = 0;
    let unchangedMessages = 0;
    for (const p of atDay2.vmail!.keys()) {
      const from = mirrorInodes.get(String((await fsp.stat(path.join(vm(), p))).ino));
      if (/\/(cur|new)\/[^/]+$/.test(p) && !isNew(`vmail/${p}`)) unchangedMessages++;
      if (!from) continue;
      shared++;
      assert.equal(from, `vmail/${p}`, `${p} in the volume is the mirror's file of the same path`);
      assert.ok(linkableFromMirror(from), `${p} shares the mirror's inode but is not a message file`);
    }
    assert.ok(unchangedMessages > 100 && shared === unchangedMessages, `${shared} of ${unchangedMessages} unchanged message files linked from the mirror`);
    assert.match(r.stderr + r.stdout, new RegExp(`hard-linked ${shared} message files from the standby copies`));
    // dovecot goes on writing into its indexes and lists in place: the mirror's copies stay as they were.
    const written = [...atDay2.vmail!.keys()].filter((p) => !linkableFromMirror(`vmail/${p}`) && mirrorBytes.has(`vmail/${p}`));
    assert.ok(written.length > 0, 'the fixture has files dovecot writes in place');
    const sizes = await Promise.all(written.map(async (p) => (await fsp.stat(path.join(vm(), p))).size));
    for (const p of written) await fsp.appendFile(path.join(vm(), p), 'dovecot appends');
    assertSameTree(await treeHashes(mirrorCopy), mirrorBytes, 'the mirror copy holds the bytes it held before the failover');
    await Promise.all(written.map((p, i) => fsp.truncate(path.join(vm(), p), sizes[i]))); // the volume as restored, for the next test
    const mirrorAfter = await inodes(mirrorCopy);
    for (const [p, x] of mirrorBefore) assert.equal(mirrorAfter.get(p)?.split(' ')[0], x.split(' ')[0], `${p} is still the mirror's own file`);
    const f = fetched(r.stdout);
    assert.ok(f.box <= change * 1.05 + 300 * KiB, `from the box ${f.box} B, the change since the mirror is ${change} B: ${f.line}`);
    assert.ok(f.box >= newMail * 0.9, `the new mail (${newMail} B) came from the box: ${f.line}`);
    assert.ok(f.host >= (vmailBytes - newMail) * 0.95, `from this host ${f.host} B of ${vmailBytes - newMail} B unchanged mail: ${f.line}`);
    assert.ok(f.line.includes(`the standby copy ${path.join(standby, day1!)}`), f.line);
  });

  it('a tampered mirror file (same size and time) is detected and fetched again from the box, never used; the mirror is not "fixed"', async () => {
    const [day1, day2] = await published();
    // Only the tampered copy may offer this file: the older mirror would hold a good one.
    await fsp.rm(path.join(standby, day1!), { recursive: true });
    mirror(day2!);
    const atDay2 = await treeHashes(vm());
    const rel = [...atDay2.keys()].find((p) => p.includes('/cur/'))!;
    const inMirror = path.join(standby, day2!, 'vmail', rel);
    const was = await fsp.stat(inMirror);
    await flipByte(inMirror);
    await fsp.utimes(inMirror, was.atime, was.mtime); // same size and time: rsync's quick check cannot tell
    const tampered = await fsp.readFile(inMirror);
    const mirrorStat = await fsp.stat(inMirror);
    assert.notEqual((await fsp.readFile(path.join(boxFolder(day2!), 'vmail', rel))).compare(tampered), 0, 'the mirror copy differs from the box');
    // The host lost that mailbox: the tampered copy is the only one on this host.
    const mailbox = rel.split('/').slice(0, 2).join('/');
    await fsp.rm(path.join(vm(), mailbox), { recursive: true });

    const r = await restore(['--backup', day2!, '--components', 'vmail']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertSameTree(await treeHashes(vm()), atDay2, `vmail as in ${day2}, the tampered file included`);
    assert.match(r.stderr, new RegExp(`1 file\\(s\\) do not match the manifest \\(vmail/${rel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): fetching them again from the Storage Box, without any copy from this host`));
    assert.equal((await fsp.readFile(inMirror)).compare(tampered), 0, 'the mirror file is left as it was found');
    const after = await fsp.stat(inMirror);
    assert.deepEqual([after.ino, after.size, after.mtimeMs, after.mode], [mirrorStat.ino, mirrorStat.size, mirrorStat.mtimeMs, mirrorStat.mode], 'nothing touched the mirror inode');
    assert.notEqual((await fsp.stat(path.join(vm(), rel))).ino, after.ino, 'the volume got a file of its own');
    const f = fetched(r.stdout);
    assert.ok(f.box < 300 * KiB, `only the tampered file and the file list came from the box: ${f.line}`);
  });

  it('failover of everything with a tampered archive file and a tampered message in the copy: both caught (the archive while the mail downloads), fetched again, the volumes are the backup', async () => {
    const day2 = (await published()).at(-1)!;
    for (const n of await fsp.readdir(standby)) await fsp.rm(path.join(standby, n), { recursive: true });
    mirror(day2);
    const atDay2: Record<string, Map<string, string>> = {};
    for (const v of VOLS) atDay2[v] = await treeHashes(sb.mailcow.volume(v));
    const copy = path.join(standby, day2);
    const held = await files(copy);
    // The biggest file of the database archive's tree, and a message: same size and time after.
    const archiveFile = [...held].filter(([p]) => p.startsWith('archives/mysql/')).sort((a, b) => b[1].size - a[1].size)[0]![0];
    const message = [...held.keys()].find((p) => /^vmail\/.*\/cur\//.test(p))!;
    const tampered: Record<string, Buffer> = {};
    for (const p of [archiveFile, message]) {
      const was = await fsp.stat(path.join(copy, p));
      await flipByte(path.join(copy, p));
      await fsp.utimes(path.join(copy, p), was.atime, was.mtime);
      tampered[p] = await fsp.readFile(path.join(copy, p));
      assert.notEqual(tampered[p]!.compare(await fsp.readFile(path.join(boxFolder(day2), p))), 0, `${p} differs from the box`);
    }
    for (const n of await fsp.readdir(vm())) await fsp.rm(path.join(vm(), n), { recursive: true });
    await mutateDatabases(sb.mailcow, 23); // the live database moved on: the restore must bring day 2's back

    const r = await restore(['--backup', day2, '--components', 'all']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const v of VOLS) assertSameTree(await treeHashes(sb.mailcow.volume(v)), atDay2[v]!, `${v} as in ${day2}`);
    const out = r.stderr + r.stdout;
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const p of [archiveFile, message]) assert.match(out, new RegExp(`1 file\\(s\\) do not match the manifest \\(${esc(p)}\\): fetching them again from the Storage Box, without any copy from this host`));
    // The archive's mismatch is found while the mail is still on its way, before the whole check.
    const lines = r.stderr.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    assert.ok(at(/verifying the archives while the mail downloads/) >= 0 && at(new RegExp(esc(archiveFile))) > at(/verifying the archives while the mail downloads/), out);
    for (const p of [archiveFile, message]) assert.equal((await fsp.readFile(path.join(copy, p))).compare(tampered[p]!), 0, `${p}: the copy is left as it was found`);
  });

  it('an earlier download kept with --keep-download is where the next restore starts: only the change since travels', async () => {
    const [day1, day2] = await published();
    const k = await restore(['--backup', day1!, '--components', 'vmail', '--keep-download']);
    assert.equal(k.code, 0, k.stderr + k.stdout);
    const kept = path.join(dir, 'tmp', 'restore', day1!);
    assert.match(k.stdout, new RegExp(`verified download: ${kept}`));
    for (const n of await fsp.readdir(standby)) await fsp.rm(path.join(standby, n), { recursive: true });
    for (const n of await fsp.readdir(vm())) await fsp.rm(path.join(vm(), n), { recursive: true });
    const inKept = await files(path.join(kept, 'vmail'));
    const onBox = await files(path.join(boxFolder(day2!), 'vmail'));
    const change = sum(onBox, (p) => ((m, n) => !m || m.size !== n.size || m.mtimeMs !== n.mtimeMs)(inKept.get(p), onBox.get(p)!));

    const r = await restore(['--backup', day2!, '--components', 'vmail']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertSameTree(await treeHashes(vm()), await treeHashes(path.join(boxFolder(day2!), 'vmail')), `vmail as in ${day2}`);
    const f = fetched(r.stdout);
    assert.ok(f.box <= change * 1.05 + 300 * KiB, `from the box ${f.box} B, the change since ${day1} is ${change} B: ${f.line}`);
    assert.ok(f.line.includes(`the earlier download of ${day1}`), f.line);
    assert.ok(!(await fsp.readdir(path.join(dir, 'tmp', 'restore'))).includes(day1!), 'mailcow\'s script is offered only the backup being restored');
  });

  it('a vmail step that fails after the tree was moved in puts both back: the volume as it was, the verified tree in the restore folder', async () => {
    const name = (await published()).at(-1)!;
    const lost = (await fsp.readdir(vm())).sort()[0]!;
    await fsp.rm(path.join(vm(), lost), { recursive: true });
    const before = await inodes(vm());
    // chown refuses (a volume on a file system that does not allow it): after the move, before dovecot starts.
    const bin = path.join(dir, 'failing-chown');
    await fsp.mkdir(bin, { recursive: true });
    await fsp.writeFile(path.join(bin, 'chown'), '#!/bin/sh\necho "chown: changing ownership: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
    const r = await runCli(RESTORE_CLI, ['--backup', name, '--components', 'vmail', '--yes', '--config', sb.configPath], { ...env, PATH: `${bin}:${env.PATH ?? process.env.PATH}` }, 180_000);
    assert.notEqual(r.code, 0, r.stderr + r.stdout);
    const folder = path.join(dir, 'tmp', 'restore', name);
    assert.match(r.stderr, new RegExp(`restoring vmail failed: .*Operation not permitted.*The verified download stays in ${folder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 's'));
    assert.deepEqual(await inodes(vm()), before, 'the volume holds its previous content, every file the same inode as before');
    assertSameTree(await treeHashes(path.join(folder, 'vmail')), await treeHashes(path.join(boxFolder(name), 'vmail')), 'the verified tree is back in the restore folder');
    assert.ok(!existsSync(path.join(folder, '.vmail-replaced')), 'nothing is left aside');

    const again = await restore(['--backup', name, '--components', 'vmail']);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assertSameTree(await treeHashes(vm()), await treeHashes(path.join(boxFolder(name), 'vmail')), `vmail as in ${name}`);
    assert.ok(fetched(again.stdout).box < 300 * KiB, 'the run again fetched next to nothing: the kept download was its starting point');
  });

  it('a restore folder on another filesystem than the volume: the tree is copied as before and the volume is the backup', async (t) => {
    const shm = '/dev/shm';
    if (!existsSync(shm) || (await fsp.stat(shm)).dev === (await fsp.stat(dir)).dev) return t.skip('no second filesystem (/dev/shm) here');
    const other = await fsp.mkdtemp(path.join(shm, 'restore-basis-'));
    try {
      const config = path.join(dir, 'other-fs.env');
      const text = (await fsp.readFile(sb.configPath, 'utf8')).split('\n').filter((l) => !l.startsWith('TEMP_BACKUP_DIR=')).concat(`TEMP_BACKUP_DIR=${other}`).join('\n');
      await fsp.writeFile(config, text + '\n', { mode: 0o600 });
      const day2 = (await published()).at(-1)!;
      for (const n of await fsp.readdir(vm())) await fsp.rm(path.join(vm(), n), { recursive: true });
      const r = await runCli(RESTORE_CLI, ['--backup', day2, '--components', 'vmail', '--yes', '--config', config], env, 180_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const want = await treeHashes(path.join(boxFolder(day2), 'vmail'));
      assertSameTree(await treeHashes(vm()), want, `vmail as in ${day2}`);
      assert.match(r.stderr + r.stdout, new RegExp(`vmail: copying ${want.size} files into .* \\(${other}/restore/${day2}/vmail is on another filesystem: the tree cannot be moved\\)`));
    } finally {
      await fsp.rm(other, { recursive: true, force: true });
    }
  });
});
