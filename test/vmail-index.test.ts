// The mail tree index and the hash cache read alongside the walk: a second run must hash only
// what changed, find renames among what is gone, and keep the walk's order so the next run can
// stream the cache again. Real files in a temp folder; hashes checked against sha256sum.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashGroups, hashIndex, PreviousManifest, saveHashCache, walkTree } from '../src/backup/manifest-step.js';
import { BackupManifest } from '../src/plan/backup-manifest.js';
import { planRenameLinks } from '../src/plan/manifest.js';
import { IndexSpillFile } from '../src/adapters/index-spill.js';
import { compareFolders, Folder, FolderReuse, VmailIndex } from '../src/plan/vmail-index.js';

const sha = (file: string) => execFileSync('sha256sum', [file]).toString().slice(0, 64);

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [p, body] of Object.entries(files)) {
    await mkdir(join(root, p, '..'), { recursive: true });
    await writeFile(join(root, p), body);
    await utimes(join(root, p), 1_700_000_000, 1_700_000_000);
  }
}

async function backupOnce(vmail: string, cache: string) {
  const previous = await PreviousManifest.open(cache, 'vmail');
  const walk = await walkTree(vmail, 'vmail', previous);
  const stats = await hashIndex(walk.index, vmail);
  const manifest = new BackupManifest(new Map([['backup_redis.tar.zst', { path: 'backup_redis.tar.zst', hash: 'e'.repeat(64), size: 3, mtimeMs: 1 }]]), walk.index);
  await saveHashCache(cache, manifest);
  return { walk, stats, manifest, previous };
}

test('second walk: unchanged files reuse the cached hash, renames are found among the gone paths, the cache stays in walk order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-index-'));
  const vmail = join(dir, 'vmail');
  const cache = join(dir, 'state', 'hash-cache.jsonl');
  try {
    await tree(vmail, {
      'ex.com/a/Maildir/cur/1:2,': 'one',
      'ex.com/a/Maildir/cur/2:2,': 'two',
      'ex.com/a/Maildir/cur/3:2,': 'three',
      'ex.com/a/Maildir/.Sent/cur/4:2,S': 'four',
      'ex.com/a/Maildir/dovecot.index': 'idx',
      'ex.com/a.b/Maildir/cur/5:2,': 'five',
      'ex.com/a b/Maildir/cur/6:2,': 'six',
      'top-level-file': 'seven',
    });
    const run1 = await backupOnce(vmail, cache);
    assert.equal(run1.stats.hashed, 8);
    assert.equal(run1.walk.reused, 0);
    for (const e of run1.manifest.entries()) assert.equal(e.hash, e.path.startsWith('vmail/') ? sha(join(dir, e.path)) : 'e'.repeat(64), e.path);
    const order = run1.walk.index.folders.map((f) => f.path);
    assert.deepEqual(order, [...order].sort(compareFolders), 'folders are walked in compareFolders order');
    assert.deepEqual(order.slice(0, 3), ['', 'ex.com', 'ex.com/a'], "a folder before its content, 'a' before 'a b' and 'a.b' (by component, not by string)");

    // A day: a flag change (rename, same mtime), a move between folders, a delete, a new message,
    // the index rewritten in place.
    await rename(join(vmail, 'ex.com/a/Maildir/cur/1:2,'), join(vmail, 'ex.com/a/Maildir/cur/1:2,S'));
    await mkdir(join(vmail, 'ex.com/a/Maildir/.Trash/cur'), { recursive: true });
    await rename(join(vmail, 'ex.com/a/Maildir/cur/2:2,'), join(vmail, 'ex.com/a/Maildir/.Trash/cur/2:2,'));
    await rm(join(vmail, 'ex.com/a/Maildir/cur/3:2,'));
    await tree(vmail, { 'ex.com/a/Maildir/new/8': 'eight' });
    await writeFile(join(vmail, 'ex.com/a/Maildir/dovecot.index'), 'idx2');

    const run2 = await backupOnce(vmail, cache);
    assert.equal(run2.stats.hashed, 4, 'the two renamed, the new one and the rewritten index: nothing else is read');
    assert.equal(run2.walk.reused, 4);
    assert.deepEqual(run2.previous.gone.map((e) => e.path).sort(), ['vmail/ex.com/a/Maildir/cur/1:2,', 'vmail/ex.com/a/Maildir/cur/2:2,', 'vmail/ex.com/a/Maildir/cur/3:2,']);
    assert.equal(run2.previous.other.get('backup_redis.tar.zst')?.hash, 'e'.repeat(64), 'files outside the tree are cached too');
    assert.deepEqual(planRenameLinks(run2.walk.index.added(), run2.previous.gone).sort((a, b) => (a.path < b.path ? -1 : 1)), [
      { path: 'vmail/ex.com/a/Maildir/.Trash/cur/2:2,', from: 'vmail/ex.com/a/Maildir/cur/2:2,' },
      { path: 'vmail/ex.com/a/Maildir/cur/1:2,S', from: 'vmail/ex.com/a/Maildir/cur/1:2,' },
    ]);
    for (const e of run2.manifest.entries()) if (e.path.startsWith('vmail/')) assert.equal(e.hash, sha(join(dir, e.path)), e.path);

    // What the next run streams: a header, then every path once, folders in walk order.
    const lines = (await readFile(cache, 'utf8')).trim().split('\n');
    assert.match(lines[0]!, /"order":"walk"/);
    const folders = lines.slice(2).map((l) => (JSON.parse(l) as [string])[0].replace(/^vmail\//, '').replace(/\/?[^/]*$/, ''));
    for (let i = 1; i < folders.length; i++) assert.ok(compareFolders(folders[i - 1]!, folders[i]!) <= 0, `${folders[i - 1]} before ${folders[i]}`);

    // A cache from before the walk order (no header, any order) is read whole: same result.
    const shuffled = lines.slice(1).reverse();
    await writeFile(cache, shuffled.join('\n') + '\n');
    const again = await backupOnce(vmail, cache);
    assert.equal(again.stats.hashed, 0);
    assert.equal(again.walk.reused, 8);
    // A damaged cache costs hashing, never a wrong hash.
    await writeFile(cache, 'not json\n["vmail/ex.com/a/Maildir/new/8", 5, 1700000000000, "zz"]\n');
    const damaged = await backupOnce(vmail, cache);
    assert.equal(damaged.stats.hashed, 8);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the index as the upload sees it: unseen files are deleted mail, unknown ones are late mail put in their place', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-index-'));
  try {
    await tree(dir, { 'd/cur/a': 'a', 'd/cur/c': 'c', 'd/cur/gone': 'g', 'e/f': 'f' });
    await chmod(join(dir, 'e'), 0o750);
    const { index } = await walkTree(dir, 'vmail');
    await hashIndex(index, dir);
    for (const p of ['vmail/d/cur/a', 'vmail/d/cur/c', 'vmail/e/f']) assert.equal(index.markSeen(p), true, p);
    assert.equal(index.markSeen('vmail/d/cur/b'), false, 'delivered after the walk');
    assert.equal(index.markSeen('vmail/new-folder/x'), false);
    assert.deepEqual([...index.unseen()], ['vmail/d/cur/gone']);
    assert.equal(index.delete('vmail/d/cur/gone'), true);
    assert.equal(index.delete('vmail/d/cur/gone'), false, 'deleted once');
    index.set('vmail/d/cur/b', { hash: 'b'.repeat(64), size: 1, mtimeMs: 2 });
    index.set('vmail/d/aa/x', { hash: 'c'.repeat(64), size: 1, mtimeMs: 2 });
    index.set('vmail/d/cur/late', { hash: '', size: 0, mtimeMs: 0 });
    const m = new BackupManifest(new Map(), index);
    assert.deepEqual([...m.entries()].map((e) => e.path), ['vmail/d/aa/x', 'vmail/d/cur/a', 'vmail/d/cur/b', 'vmail/d/cur/c', 'vmail/e/f'], 'late files and folders in walk order; no hash, no entry');
    assert.deepEqual([...m.unhashed()], ['vmail/d/cur/late']);
    assert.equal(m.get('vmail/d/cur/b')?.hash, 'b'.repeat(64));
    assert.equal(m.has('vmail/d/cur/gone'), false);
    assert.deepEqual(m.totals(), { files: 5, bytes: 5 });
    assert.deepEqual(index.dirModes(), { e: 0o750 });
    assert.equal(index.ownership().exceptions.length, 0);
    assert.throws(() => index.add(index.folders[0]!), /out of walk order/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an index spilled to disk (a million messages) gives the same manifest, parts and upload bookkeeping as one in memory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-index-'));
  const vmail = join(dir, 'vmail');
  try {
    const files: Record<string, string> = {};
    for (const box of ['a', 'b', 'c']) for (let i = 0; i < 40; i++) files[`ex.com/${box}/Maildir/${i % 3 ? 'cur' : '.Sent/cur'}/${1000 + i}.M1P2.host,S=3:2,${i % 2 ? 'S' : ''}`] = `${box}${i}`;
    // Lines coreutils escapes, and equal hashes: the part's order then comes from the text.
    Object.assign(files, { 'ex.com/a/Maildir/cur/back\\slash:2,': 'a0', 'ex.com/a/Maildir/cur/new\nline:2,': 'b7', 'ex.com/a/Maildir/cur/same:2,': 'a0' });
    await tree(vmail, files);
    const run = async (store?: IndexSpillFile) => {
      const { index } = await walkTree(vmail, 'vmail', undefined, store);
      await hashIndex(index, vmail);
      // What the upload and the live-mail corrections do, across folders, out of walk order.
      for (const p of [...index.paths()].filter((_, k) => k % 4 !== 1)) index.markSeen(p, p.includes('/b/'));
      index.set('vmail/ex.com/a/Maildir/cur/0999.late', { hash: 'd'.repeat(64), size: 9, mtimeMs: 5 });
      index.set('vmail/ex.com/c/Maildir/new/late', { hash: 'f'.repeat(64), size: 1, mtimeMs: 2 });
      index.delete('vmail/ex.com/b/Maildir/cur/1001.M1P2.host,S=3:2,S');
      const m = new BackupManifest(new Map(), index);
      return {
        entries: [...m.entries()],
        parts: [...m.parts()].map(([part, lines]) => [part, [...lines]] as const),
        sent: [...index.sent()],
        unseen: [...index.unseen()],
        totals: m.totals(),
        late: m.get('vmail/ex.com/a/Maildir/cur/0999.late'),
      };
    };
    const inMemory = await run();
    // Budget 0: every folder but the one in use lives in the file, and comes back when asked for.
    const spill = new IndexSpillFile(join(dir, 'spill'), 0);
    const spilled = await run(spill);
    spill.close();
    assert.ok(spill.written > 0, 'folders went to the file');
    assert.equal(inMemory.entries.length, 124);
    for (const [part, lines] of inMemory.parts) assert.deepEqual(lines, [...lines].sort(), `${part} in sort order`);
    assert.ok(inMemory.parts.some(([, lines]) => lines.some((l) => l.startsWith('\\'))), 'an escaped line among them');
    for (const e of inMemory.entries) if (!/late$|[\\\n]/.test(e.path)) assert.equal(e.hash, sha(join(dir, e.path)), e.path);
    assert.deepEqual(spilled, inMemory);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hashing a spilled index goes folder by folder when the budget holds one: each comes back from the file once, one with nothing to hash not at all, and the hashes are sha256sum\'s', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-index-'));
  const vmail = join(dir, 'vmail');
  try {
    const files: Record<string, string> = {};
    for (const box of ['a', 'b', 'c']) for (let i = 0; i < 30; i++) files[`ex.com/${box}/Maildir/${i % 3 ? 'cur' : 'new'}/${1000 + i}.M1P2.host:2,`] = `${box}${i}`;
    await tree(vmail, files);
    // Budget 0: every folder but the one in use is in the file.
    const spill = new IndexSpillFile(join(dir, 'spill'), 0);
    try {
      const { index } = await walkTree(vmail, 'vmail', undefined, spill);
      // The index's bytes: each folder loaded once.
      const indexBytes = index.folders.reduce((n, f) => (f.flags, n + f.residentBytes), 0);
      const unhashed = () => index.folders.map((f) => [f.path, f.unhashed, [...index.unhashedIn(f)].length]);
      assert.deepEqual(unhashed().filter(([, n]) => n), unhashed().filter(([, , k]) => k).map(([p, , k]) => [p, k, k]));
      const before = spill.read;
      const s = await hashIndex(index, vmail);
      assert.equal(s.hashed, 90);
      // Batches of 256 files would span every folder; their answers then reloaded evicted ones.
      assert.ok(spill.read - before <= indexBytes, `read ${spill.read - before} B back for an index of ${indexBytes} B`);
      for (const e of new BackupManifest(new Map(), index).entries()) assert.equal(e.hash, sha(join(dir, e.path)), e.path);
      assert.ok(index.folders.every((f) => f.unhashed === 0));
      // Mail that arrived meanwhile and a deletion keep the counts right.
      index.set('vmail/ex.com/b/Maildir/new/late', { hash: '', size: 1, mtimeMs: 2 });
      index.delete('vmail/ex.com/c/Maildir/cur/1001.M1P2.host:2,');
      assert.deepEqual(unhashed().filter(([, n]) => n), [['ex.com/b/Maildir/new', 1, 1]]);
      index.delete('vmail/ex.com/b/Maildir/new/late');
      const read = spill.read;
      assert.equal((await hashIndex(index, vmail)).hashed, 0);
      assert.equal(spill.read, read, 'nothing to hash: no folder was loaded');
    } finally {
      spill.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hashing groups consecutive folders the memory budget holds; a bigger folder goes alone, one with nothing to hash is left out', () => {
  const folder = (path: string, n: number) => new Folder(path, 0o700, 5000, 5000, Array.from({ length: n }, (_, i) => ({ name: `${1000 + i}.M1P2.host:2,S`, size: 9, mtimeMs: 1, uid: 5000, gid: 5000 })));
  const [a, b, empty, big, e] = [folder('a', 10), folder('b', 10), folder('c', 0), folder('d', 100), folder('e', 10)];
  const paths = (budget: number) => [...hashGroups([a!, b!, empty!, big!, e!], budget)].map((g) => g.map((f) => f.path));
  assert.ok(a!.bytes > 0 && big!.bytes > a!.bytes + b!.bytes);
  assert.deepEqual(paths(a!.bytes + b!.bytes), [['a', 'b'], ['d'], ['e']]);
  assert.deepEqual(paths(0), [['a'], ['b'], ['d'], ['e']]);
  // Without a spill file nothing is evicted: one group, the batches never wait.
  assert.deepEqual(paths(Infinity), [['a', 'b', 'd', 'e']]);
});

test('hashing a spilled index whose budget holds several folders: they are hashed as one group, each read back once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcb-index-'));
  const vmail = join(dir, 'vmail');
  try {
    const files: Record<string, string> = {};
    for (const box of ['a', 'b', 'c', 'd']) for (let i = 0; i < 40; i++) files[`ex.com/${box}/Maildir/${i % 4 ? 'cur' : 'new'}/${1000 + i}.M1P2.host:2,`] = `${box}${i}`;
    await tree(vmail, files);
    const spill = new IndexSpillFile(join(dir, 'spill'), 4096);
    try {
      const { index } = await walkTree(vmail, 'vmail', undefined, spill);
      const indexBytes = index.folders.reduce((n, f) => n + f.bytes, 0);
      const groups = [...hashGroups(index.folders, spill.budget)];
      // 8 folders of ~1-3 KiB each under a 4 KiB budget: fewer groups than folders, more than one.
      assert.ok(groups.length > 1 && groups.length < 8, `${groups.length} groups`);
      const before = spill.read;
      assert.equal((await hashIndex(index, vmail)).hashed, 160);
      assert.ok(spill.read - before <= indexBytes, `read ${spill.read - before} B back for an index of ${indexBytes} B`);
      // Only a group was ever kept loaded: what is in memory now fits the budget.
      const resident = index.folders.reduce((n, f) => n + f.residentBytes, 0);
      assert.ok(resident <= spill.budget, `${resident} B of columns in memory for a budget of ${spill.budget} B`);
      for (const e of new BackupManifest(new Map(), index).entries()) assert.equal(e.hash, sha(join(dir, e.path)), e.path);
    } finally {
      spill.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a folder's previous entries are merged as they come: in order, interleaved with gone names, and out of order", () => {
  const facts = (name: string, size: number) => ({ name, size, mtimeMs: 1000, uid: 5000, gid: 5000 });
  const folder = new Folder('ex.com/a/Maildir/cur', 0o700, 5000, 5000, [facts('b', 2), facts('d', 4), facts('f', 6), facts('h', 8)]);
  const reuse = new FolderReuse(folder);
  const h = (c: string) => c.repeat(64);
  const took = [
    reuse.take('a', { size: 1, mtimeMs: 1000, hash: h('a') }), // gone, before the first name
    reuse.take('b', { size: 2, mtimeMs: 1000, hash: h('b') }),
    reuse.take('c', { size: 3, mtimeMs: 1000, hash: h('c') }), // gone, between two names
    reuse.take('f', { size: 5, mtimeMs: 1000, hash: h('f') }), // rewritten: known, not reused
    reuse.take('d', { size: 4, mtimeMs: 1000, hash: h('d') }), // out of the folder's order
    reuse.take('z', { size: 9, mtimeMs: 1000, hash: h('9') }), // gone, past the last name
  ];
  assert.deepEqual(took, [false, true, false, true, true, false]);
  assert.equal(reuse.reused, 2);
  assert.deepEqual([0, 1, 2, 3].map((i) => [folder.name(i), folder.hash.subarray(32 * i, 32 * i + 32).some((b) => b !== 0) ? folder.hashHex(i) : '']), [
    ['b', h('b')],
    ['d', h('d')],
    ['f', ''],
    ['h', ''],
  ]);
  // The files without a reused hash are the ones the run hashes: the rewritten and the new one.
  const index = new VmailIndex('vmail');
  index.add(folder);
  assert.deepEqual([...index.unhashed()].map(({ i }) => folder.name(i)), ['f', 'h']);
});
