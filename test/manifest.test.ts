// The manifest must read back exactly as coreutils writes it, for any name a maildir can hold,
// and the words sent to the box's shell must be quoted or refused.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { batchPaths, boxCommand, isShellSafe } from '../src/plan/box-command.js';
import { createHashPool, hashEach } from '../src/adapters/hash.js';
import { hashIndex, walkTree } from '../src/backup/manifest-step.js';
import { writeManifestPart } from '../src/backup/transfer.js';
import { BackupManifest } from '../src/plan/backup-manifest.js';
import { CHECKSUM_FILE, formatChecksumLine, formatChecksums, judgeMismatch, manifestPartOf, parseChecksumLine, planRenameLinks, readManifest, type ManifestProblem } from '../src/plan/manifest.js';
import { parseItemize, parseListOnly, parseStats } from '../src/plan/transport-args.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { bucketBits } from '../src/plan/manifest-buckets.js';
import { assertSameTree, backup, publishedOnBox, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';

const NAMES = ['cur/1700000000.M1P2.host,S=10,W=12:2,S', '.Sent Items/cur/a', '.Entw&APw-rfe/cur/b', 'back\\slash', 'new\nline', "quote'd", 'ünï'];

test('checksum lines round-trip and match what sha256sum itself prints', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-manifest-'));
  try {
    for (const n of NAMES) {
      const flat = n.replace(/\//g, '_');
      await writeFile(join(dir, flat), n);
      const theirs = execFileSync('sha256sum', ['--', flat], { cwd: dir }).toString().replace(/\n$/, '');
      const hash = theirs.replace(/^\\/, '').slice(0, 64);
      assert.equal(formatChecksumLine(hash, flat), theirs, JSON.stringify(n));
      assert.deepEqual(parseChecksumLine(theirs), { hash, path: flat });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the hash pool gives what sha256sum gives, around its 1 MiB read buffer; a vanished file is undefined, an unreadable one fails the batch', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-hash-pool-'));
  try {
    const sizes = [0, 1, 2500, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7];
    const paths: string[] = [];
    for (const size of sizes) {
      const p = join(dir, `f${size}`);
      await writeFile(p, Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff)));
      paths.push(p);
    }
    const theirs = execFileSync('sha256sum', paths).toString().trim().split('\n').map((l) => l.slice(0, 64));
    const got = new Map<string, { hash: string; size: number } | undefined>();
    // One and two workers, more files than one batch, sizes known or not: answers come back to
    // the right file.
    const many = Array.from({ length: 600 }, (_, k) => k % paths.length);
    for (const [threads, known] of [[1, true], [2, true], [2, false]] as const) {
      got.clear();
      await hashEach(many, (k) => ({ abs: paths[k]!, size: known ? sizes[k] : undefined }), (k, r) => void got.set(paths[k]!, r), threads);
      paths.forEach((p, k) => assert.deepEqual(got.get(p), { hash: theirs[k], size: sizes[k] }, `${p}, ${threads} threads`));
    }
    const pool = createHashPool(2);
    try {
      const [gone, first] = await pool.hashBatch([join(dir, 'never-there'), paths[2]!]);
      assert.equal(gone, undefined);
      assert.deepEqual(first, { hash: theirs[2], size: 2500 });
      assert.deepEqual(await pool.hashBatch([]), []);
      await assert.rejects(pool.hashBatch([paths[1]!, dir]), /cannot read a file to hash it: EISDIR/);
    } finally {
      await pool.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a mismatch is corruption only when the local file still has the manifest hash', () => {
  assert.equal(judgeMismatch('a', 'a'), 'corrupt-on-box');
  assert.equal(judgeMismatch('a', 'b'), 'changed-during-run');
  assert.equal(judgeMismatch('a', undefined), 'vanished-during-run');
});

test('box commands: quoted words, refused characters never sent', () => {
  assert.equal(boxCommand(['sha256sum', '--', 'a/.Sent Items/x', "it's"]), `sha256sum -- 'a/.Sent Items/x' 'it'\\''s'`);
  for (const bad of ['a&b', 'a;b', 'a|b', 'a$b', 'a`b', 'a\nb', 'a>b', 'a<b']) {
    assert.equal(isShellSafe(bad), false);
    assert.throws(() => boxCommand(['ls', bad]));
  }
  const batches = batchPaths(Array.from({ length: 1000 }, (_, i) => `backups/mailcow/x/vmail/${'d'.repeat(100)}/${i}`));
  assert.ok(batches.length > 4);
  assert.ok(batches.every((b) => b.length <= 200 && b.join(' ').length < 30_000));
  assert.equal(batches.flat().length, 1000);
});

test('rsync output: itemized lines, listings and stats', () => {
  assert.deepEqual(parseItemize('<f+++++++++ example.com/alice/Maildir/cur/1.M2:2,S'), { code: '<f+++++++++', path: 'example.com/alice/Maildir/cur/1.M2:2,S' });
  assert.deepEqual(parseItemize('>f.st...... a b'), { code: '>f.st......', path: 'a b' });
  assert.equal(parseItemize('cd+++++++++ dir/')?.code, 'cd+++++++++');
  assert.equal(parseItemize('Number of files: 3'), undefined);
  // -ii: files linked to the --link-dest basis, and files already in place.
  assert.deepEqual(parseItemize('hf          example.com/a/Maildir/cur/1.M2:2,S'), { code: 'hf         ', path: 'example.com/a/Maildir/cur/1.M2:2,S' });
  assert.deepEqual(parseItemize('.f          a b'), { code: '.f         ', path: 'a b' });
  assert.equal(parseItemize('cd          dir/')?.code, 'cd         ');
  assert.equal(parseItemize('created directory backups/x'), undefined);
  assert.deepEqual(parseItemize('<f+++++++++ new\\#012line'), { code: '<f+++++++++', path: 'new\nline' });
  assert.deepEqual(parseListOnly('drwxr-xr-x          4,096 2026/11/23 10:00:00 mailcow-2026-11-23-10-00-00'), {
    type: 'dir',
    size: 4096,
    mtime: '2026/11/23 10:00:00',
    name: 'mailcow-2026-11-23-10-00-00',
  });
  assert.equal(parseStats(['Total bytes sent: 1,234,567', 'Total file size: 9,999']).bytesSent, 1234567);
});

test('split manifest: one part per maildir folder, and `zcat -f checksums.sha256 manifest/*.gz | sha256sum -c` checks it all', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-manifest-'));
  try {
    const files = ['backup_mariadb.tar.zst', 'vmail/ex.com/a/Maildir/cur/1:2,S', 'vmail/ex.com/a/Maildir/new/2', 'vmail/ex.com/a/Maildir/.Sent Items/cur/3', 'vmail/ex.com/a/Maildir/dovecot.index', 'vmail/ex.com/b/Maildir/.Entw&APw-rfe/cur/4', 'vmail/ex.com/b/Maildir/cur/back\\slash'];
    const entries: { hash: string; path: string }[] = [];
    for (const f of files) {
      await mkdir(join(dir, f, '..'), { recursive: true });
      await writeFile(join(dir, f), f);
      entries.push({ path: f, hash: execFileSync('sha256sum', [f], { cwd: dir }).toString().replace(/^\\/, '').slice(0, 64) });
    }
    assert.equal(manifestPartOf('vmail/ex.com/a/Maildir/cur/1:2,S'), manifestPartOf('vmail/ex.com/a/Maildir/new/2'), 'cur and new of a folder share a part');
    assert.notEqual(manifestPartOf('vmail/ex.com/a/Maildir/cur/1'), manifestPartOf('vmail/ex.com/b/Maildir/cur/1'));
    assert.equal(manifestPartOf('backup_mariadb.tar.zst'), undefined);
    // The manifest as the run builds it: the dump's files in a map, the mail tree walked and hashed.
    const walk = await walkTree(join(dir, 'vmail'), 'vmail');
    await hashIndex(walk.index, join(dir, 'vmail'));
    const manifest = new BackupManifest(new Map(entries.filter((e) => !e.path.startsWith('vmail/')).map((e) => [e.path, { ...e, size: 0, mtimeMs: 0 }])), walk.index);
    const top = manifest.top();
    const parts = new Map([...manifest.parts()].map(([part, sorted]) => [part, [...sorted]] as const));
    assert.equal(parts.size, 4, 'INBOX (with its index), .Sent Items, and two of b');
    assert.deepEqual([...manifest.entries()].map((e) => [e.path, e.hash]).sort(), entries.map((e) => [e.path, e.hash]).sort(), 'the walk hashes like sha256sum');
    await mkdir(join(dir, 'manifest'));
    const lines = top.map((e) => formatChecksumLine(e.hash, e.path));
    for (const [part, partLines] of parts) {
      const want = gzipSync(formatChecksums(partLines.map((l) => parseChecksumLine(l)!)), { level: 9 });
      assert.deepEqual(partLines, [...partLines].sort(), 'lines come sorted from the index');
      await writeManifestPart(join(dir, part), partLines);
      // Streamed in chunks, the same bytes as the whole text gzip'ed at once (as parts were made
      // before): an unchanged folder's part stays identical to yesterday's, across versions too.
      assert.deepEqual(await readFile(join(dir, part)), want, part);
      lines.push(execFileSync('sha256sum', [part], { cwd: dir }).toString().trim());
    }
    await writeFile(join(dir, CHECKSUM_FILE), lines.sort().join('\n') + '\n');
    execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: dir });

    const read = new Map<string, string>();
    await readManifest(dir, (e) => read.set(e.path, e.hash));
    for (const e of entries) assert.equal(read.get(e.path), e.hash, e.path);
    assert.equal(read.size, entries.length + parts.size, 'the parts are files of the backup too');

    // A part changed after the fact is a problem; its lines are not trusted.
    const victim = [...parts.keys()][0]!;
    await writeFile(join(dir, victim), `${'0'.repeat(64)}  vmail/x\n`);
    const problems: ManifestProblem[] = [];
    const after = new Map<string, string>();
    await readManifest(dir, (e) => after.set(e.path, e.hash), (p) => problems.push(p));
    assert.deepEqual(problems.map((p) => [p.kind, p.file]), [['part-mismatch', victim]]);
    assert.equal(after.has('vmail/x'), false);
    await rm(join(dir, victim));
    await assert.rejects(readManifest(dir, () => undefined), /is missing/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('renames are found by content, size and mtime second, among paths gone since the previous backup', () => {
  const h = (c: string) => c.repeat(64);
  const e = (path: string, hash: string, size: number, mtimeMs: number) => ({ path, hash, size, mtimeMs });
  const gone = [e('vmail/a/cur/1:2,', h('1'), 10, 5_000), e('vmail/a/cur/3:2,', h('3'), 30, 7_000), e('vmail/a/cur/5:2,', h('5'), 50, 7_000)];
  const added = [
    e('vmail/a/cur/1:2,S', h('1'), 10, 5_999), // flag change
    e('vmail/a/.Trash/cur/5:2,', h('5'), 50, 7_000), // moved
    e('vmail/a/cur/3:2,S', h('3'), 30, 9_000), // other mtime: rsync would not see it as up to date
    e('vmail/a/cur/6:2,S', h('2'), 20, 6_000), // a copy of a message still there: left to rsync
    e('vmail/b/new/y', h('9'), 10, 5_000), // new
  ];
  assert.deepEqual(planRenameLinks(added, gone), [
    { path: 'vmail/a/cur/1:2,S', from: 'vmail/a/cur/1:2,' },
    { path: 'vmail/a/.Trash/cur/5:2,', from: 'vmail/a/cur/5:2,' },
  ]);
});

test('a large part (past 4,096 lines: a folder too big to split) streamed through gzip in chunks, from its sorted lines, has the bytes of the whole text gzip-ed at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-part-'));
  try {
    const lines = Array.from({ length: 5000 }, (_, i) => formatChecksumLine(createHash('sha256').update(String(i)).digest('hex'), `vmail/ex.com/a/Maildir/cur/${1700000000 + i}.M${i}P7.host,S=${i},W=${i + 9}:2,S`));
    const want = gzipSync(formatChecksums(lines.map((l) => parseChecksumLine(l)!)), { level: 9 });
    assert.ok(formatChecksums(lines.map((l) => parseChecksumLine(l)!)).length > 5 * 65536, 'several chunks');
    await writeManifestPart(join(dir, 'p.gz'), [...lines].sort());
    assert.deepEqual(await readFile(join(dir, 'p.gz')), want);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a big folder on the box: one new message stores one of its manifest buckets anew, the others are hard links to the previous backup\'s; the backup checks, verifies and restores', { timeout: 600_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-buckets-'));
  let sb: Sandbox | undefined;
  try {
    sb = await createSandbox({ dir, mailBytes: 256 * 1024, seed: 19, strict: true });
    const vmail = sb.mailcow.volume('vmail');
    const big = join(vmail, 'example.com/alice/Maildir/.Archive');
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(big, sub), { recursive: true });
    for (let i = 0; i < 3000; i++) await writeFile(join(big, 'cur', `16000${i}.M${i}P7.host,S=30:2,S`), `Subject: archived ${i}\n\nold mail\n`);
    const run = async () => {
      const r = await backup(['run', '--config', sb!.configPath], sb!.env);
      assert.equal(r.code, 0, r.stderr);
      return (await publishedOnBox(sb!.box.root, sb!.remotePath)).at(-1)!;
    };
    const first = await run();
    await writeFile(join(big, 'new', '1800000000.M1P1.host,S=40'), 'Subject: new\n\nmail of the hour\n');
    const second = await run();
    assert.notEqual(second, first);

    const boxBackups = join(sb.box.root, sb.remotePath);
    const stem = manifestPartOf('vmail/example.com/alice/Maildir/.Archive/cur/x')!.replace(/^manifest\/|\.sha256\.gz$/g, '');
    const partsIn = async (name: string) => (await readdir(join(boxBackups, name, 'manifest'))).filter((f) => f.startsWith(`${stem}.`)).sort();
    const names = await partsIn(second);
    assert.equal(names.length, 2 ** bucketBits(3000), `3000 messages in ${2 ** bucketBits(3000)} buckets: ${names.join(' ')}`);
    assert.ok(names.length >= 8);
    assert.deepEqual(await partsIn(first), names);
    const fresh: string[] = [];
    for (const n of names) {
      const [a, b] = await Promise.all([stat(join(boxBackups, first, 'manifest', n)), stat(join(boxBackups, second, 'manifest', n))]);
      if (a.ino !== b.ino) fresh.push(n);
      else assert.ok(b.nlink >= 2, n);
    }
    assert.equal(fresh.length, 1, `one bucket stored anew, the other ${names.length - 1} linked: ${fresh.join(' ')}`);

    // The README's check with coreutils, then the box's own re-hash, then a restore from it.
    execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: join(boxBackups, second) });
    const v = await backup(['verify', second, '--config', sb.configPath], sb.env);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.match(v.stdout, /OK/);
    const atBackup = await treeHashes(vmail);
    await unlink(join(big, 'new', '1800000000.M1P1.host,S=40'));
    await unlink(join(big, 'cur', '160001234.M1234P7.host,S=30:2,S'));
    const r = await runCli(RESTORE_CLI, ['--backup', second, '--components', 'vmail', '--yes', '--config', sb.configPath], { ...sb.env, STANDIN_PROMPTS: 'tty' }, 180_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertSameTree(await treeHashes(vmail), atBackup, 'vmail as at the second backup');
  } finally {
    await sb?.stop();
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  }
});
