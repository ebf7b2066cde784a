// The manifest must read back exactly as coreutils writes it, for any name a maildir can hold,
// and the words sent to the box's shell must be quoted or refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { batchPaths, boxCommand, isShellSafe } from '../src/plan/box-command.js';
import { formatChecksumLine, judgeMismatch, parseChecksumLine } from '../src/plan/manifest.js';
import { parseItemize, parseListOnly, parseStats } from '../src/plan/transport-args.js';

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
  assert.deepEqual(parseItemize('<f+++++++++ new\\#012line'), { code: '<f+++++++++', path: 'new\nline' });
  assert.deepEqual(parseListOnly('drwxr-xr-x          4,096 2026/11/23 10:00:00 mailcow-2026-11-23-10-00-00'), {
    type: 'dir',
    size: 4096,
    mtime: '2026/11/23 10:00:00',
    name: 'mailcow-2026-11-23-10-00-00',
  });
  assert.equal(parseStats(['Total bytes sent: 1,234,567', 'Total file size: 9,999']).bytesSent, 1234567);
});
