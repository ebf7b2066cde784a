// A big maildir folder's manifest part split into buckets by hash prefix (issues 16 and 19): what
// a change costs on the box is one bucket, and the buckets together are exactly the old part.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { IndexSpillFile } from '../src/adapters/index-spill.js';
import { BackupManifest } from '../src/plan/backup-manifest.js';
import { BUCKET_LINES, bucketBits, bucketOfLine, bucketPartName } from '../src/plan/manifest-buckets.js';
import { formatChecksumLine, formatChecksums, isManifestPart, manifestPartOf } from '../src/plan/manifest.js';
import { Folder, VmailIndex } from '../src/plan/vmail-index.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const MAILDIR = 'example.com/alice/Maildir/.Archive';
const PART = manifestPartOf(`vmail/${MAILDIR}/cur/x`)!;

/** An index as the walk and hashing leave it: folders in walk order, every file hashed. */
function indexOf(files: Record<string, string>, store?: IndexSpillFile): VmailIndex {
  const byDir = new Map<string, [string, string][]>();
  for (const [path, hash] of Object.entries(files)) {
    const dir = path.slice(0, path.lastIndexOf('/'));
    byDir.set(dir, [...(byDir.get(dir) ?? []), [path.slice(dir.length + 1), hash]]);
  }
  const index = new VmailIndex('vmail', store);
  for (const dir of [...byDir.keys()].sort()) {
    const folder = new Folder(dir, 0o700, 5000, 5000, byDir.get(dir)!.map(([name]) => ({ name, size: 1, mtimeMs: 1, uid: 5000, gid: 5000 })));
    index.add(folder);
    const hashes = new Map(byDir.get(dir));
    for (let i = 0; i < folder.length; i++) folder.setHash(i, hashes.get(folder.name(i))!);
  }
  return index;
}

/** A big folder: cur and new of one maildir, plus its dovecot files and names coreutils escapes. */
function bigFolder(n: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`${MAILDIR}/${i % 7 ? 'cur' : 'new'}/17000${i}.M${i}P9.host,S=${i}:2,${i % 3 ? 'S' : ''}`] = sha(`mail ${i}`);
  Object.assign(files, {
    [`${MAILDIR}/dovecot.index`]: sha('index'),
    [`${MAILDIR}/cur/back\\slash:2,S`]: `9f${sha('b').slice(2)}`,
    [`${MAILDIR}/cur/new\nline:2,`]: `a0${sha('n').slice(2)}`,
    [`${MAILDIR}/cur/first\\:2,`]: `00${sha('f').slice(2)}`,
    [`${MAILDIR}/cur/same-hash:2,S`]: `9f${sha('b').slice(2)}`,
    [`${MAILDIR}/cur/same-hash:2,`]: `9f${sha('b').slice(2)}`,
    'example.com/alice/Maildir/cur/small': sha('small'),
  });
  return files;
}

const partsOf = (index: VmailIndex) => new Map<string, string[]>([...new BackupManifest(new Map(), index).parts()].map(([name, lines]) => [name, [...lines]]));

test('bucket count: a power of two from the line count, a few hundred lines each; a small folder stays one part under its old name', () => {
  for (const n of [0, 1, 2 * BUCKET_LINES - 1]) assert.equal(bucketBits(n), 0, `${n} lines`);
  assert.equal(bucketBits(2 * BUCKET_LINES), 1);
  assert.equal(bucketBits(4 * BUCKET_LINES - 1), 1);
  assert.equal(bucketBits(4 * BUCKET_LINES), 2);
  for (const n of [2 * BUCKET_LINES, 1000, 3000, 4096, 8191, 132_265, 1e6]) {
    const perBucket = n / 2 ** bucketBits(n);
    assert.ok(perBucket >= BUCKET_LINES && perBucket < 2 * BUCKET_LINES, `${n} lines: ${perBucket} a bucket`);
  }
  assert.equal(bucketPartName(PART, 0, 0), PART);
  const names = [0, 1, 7].map((k) => bucketPartName(PART, k, 3)).concat(bucketPartName(PART, 7, 4), bucketPartName(PART, 300, 9));
  assert.deepEqual(names.map((n) => n.slice(PART.length - '.sha256.gz'.length)), ['.0-of-8.sha256.gz', '.1-of-8.sha256.gz', '.7-of-8.sha256.gz', '.07-of-16.sha256.gz', '.300-of-512.sha256.gz']);
  for (const n of names) assert.ok(isManifestPart(n), `${n} is read as a part (box-shell-safe)`);
  assert.equal(new Set(names).size, names.length, 'a folder grown into more buckets never reuses an older name');
  // Lines go by their hash's leading bits; escaped lines where sort puts them, between 9… and a….
  assert.equal(bucketOfLine(formatChecksumLine('f'.repeat(64), 'x'), 3), 7);
  assert.equal(bucketOfLine(formatChecksumLine(`9f${'0'.repeat(62)}`, 'x'), 3), 4);
  assert.equal(bucketOfLine(formatChecksumLine('0'.repeat(64), 'back\\slash'), 3), 4);
  assert.equal(bucketOfLine(formatChecksumLine('0'.repeat(64), 'new\nline'), 1), 1);
});

test('a big folder\'s buckets, in order, are exactly its unsplit part; each line in its hash\'s bucket; spilled or not', async () => {
  const files = bigFolder(3000);
  const parts = partsOf(indexOf(files));
  const mine = [...parts.keys()].filter((p) => p.startsWith(PART.replace(/\.sha256\.gz$/, '')));
  const bits = bucketBits(3006);
  assert.ok(bits >= 3);
  assert.equal(mine.length, 2 ** bits, mine.join(' '));
  assert.deepEqual(mine, [...mine].sort(), 'the buckets come in order, and `ls` lists them so');
  const unsplit = formatChecksums(Object.entries(files).filter(([p]) => p.startsWith(`${MAILDIR}/`)).map(([p, hash]) => ({ hash, path: `vmail/${p}` })));
  const joined = mine.map((p) => parts.get(p)!.join('\n') + '\n').join('');
  assert.deepEqual(joined.split('\n'), unsplit.split('\n'), 'concatenated: the unsplit part, line for line');
  assert.equal(joined, unsplit, 'byte for byte');
  for (const [k, p] of mine.entries()) {
    assert.equal(p, bucketPartName(PART, k, bits));
    for (const line of parts.get(p)!) assert.equal(bucketOfLine(line, bits), k, `${JSON.stringify(line.slice(0, 90))} in ${p}`);
  }
  assert.ok(mine.some((p) => parts.get(p)!.some((l) => l.startsWith('\\'))), 'escaped lines among them');
  assert.deepEqual(parts.get(manifestPartOf('vmail/example.com/alice/Maildir/cur/small')!), [formatChecksumLine(sha('small'), 'vmail/example.com/alice/Maildir/cur/small')], 'a small folder: one part, its old name');

  // Spilled with no budget (a million messages): the same parts, the part's folders kept loaded.
  const dir = await mkdtemp(join(tmpdir(), 'mcb-buckets-'));
  try {
    const spill = new IndexSpillFile(join(dir, 'spill'), 0);
    const index = indexOf(files, spill);
    let loads = 0;
    const get = spill.get.bind(spill);
    spill.get = (slot) => (loads++, get(slot));
    assert.deepEqual(partsOf(index), parts);
    spill.close();
    assert.ok(spill.written > 0, 'the index was spilled');
    assert.ok(loads <= index.folders.length, `each folder loaded once, not once a bucket: ${loads} loads of ${index.folders.length} folders`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('one new message changes one bucket, one flag change (same hash, new name) one bucket; the others stay byte-identical', () => {
  const files = bigFolder(3000);
  const before = partsOf(indexOf(files));
  const bits = bucketBits(3006);
  const changed = (after: Map<string, string[]>) => [...after].filter(([p, lines]) => JSON.stringify(before.get(p)) !== JSON.stringify(lines)).map(([p]) => p);
  assert.deepEqual([...partsOf(indexOf(files)).keys()], [...before.keys()], 'the same index gives the same parts');

  const arrived = `${MAILDIR}/new/1800000000.M1P1.host,S=40`;
  const withNew = partsOf(indexOf({ ...files, [arrived]: sha('new mail') }));
  assert.deepEqual(changed(withNew), [bucketPartName(PART, bucketOfLine(sha('new mail'), bits), bits)]);

  const old = `${MAILDIR}/cur/170001.M1P9.host,S=1:2,S`;
  const hash = files[old]!;
  const rest = Object.fromEntries(Object.entries(files).filter(([p]) => p !== old));
  const flagged = partsOf(indexOf({ ...rest, [`${old}F`]: hash }));
  assert.deepEqual(changed(flagged), [bucketPartName(PART, bucketOfLine(hash, bits), bits)]);
});
