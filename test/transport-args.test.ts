// The upload's rsync command line: a tree sent against yesterday's goes over its own compressed
// ssh connection (its file list is most of what crosses), everything else over the run's master.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checksumCheckArgs, uploadArgs } from '../src/plan/transport-args.js';

const target = { host: 'u1.your-storagebox.de', port: 23, user: 'u1', keyPath: '/k', knownHosts: '/kh', connectTimeout: 10, controlPath: '/run/c' };
const base = { target, source: '/vmail', dest: 'b/.incomplete-x/vmail', linkDest: ['b/mailcow-1/vmail'], tree: true, timeoutSec: 60, bwlimitKBps: 0 };
const shell = (args: string[]) => args[args.indexOf('-e') + 1]!;

test('a tree against a basis: its own connection with ssh compression; otherwise the master, uncompressed', () => {
  const compressed = shell(uploadArgs({ ...base, compress: true }));
  assert.match(compressed, /-o Compression=yes$/);
  assert.doesNotMatch(compressed, /ControlPath/, 'compression is negotiated per connection: not on the master');
  assert.match(compressed, /StrictHostKeyChecking=yes/, 'the same host-key pinning');
  const plain = shell(uploadArgs(base));
  assert.match(plain, /ControlPath=\/run\/c/);
  assert.doesNotMatch(plain, /Compression/);
});

test('rsync --checksum checks name their paths as arguments, batched under the command-line limit, safe from options and host names', () => {
  const rels = ['-rf', 'host:x', 'example.com/alice/Maildir/cur/1700000000.M1P1.h,S=20:2,S', 'a'.repeat(200), 'b'.repeat(200)];
  const [one, ...more] = checksumCheckArgs(target, rels, 'b/.incomplete-x/vmail/');
  assert.equal(more.length, 0);
  // After '--', every path starts with './': not an option, not a host; the box's folder last.
  const after = one!.slice(one!.indexOf('--') + 1);
  assert.deepEqual(after.slice(0, -1), rels.map((r) => `./${r}`));
  assert.equal(after.at(-1), 'u1@u1.your-storagebox.de:b/.incomplete-x/vmail/');
  assert.ok(['-ltRd', '--checksum', '--dry-run', '--itemize-changes'].every((a) => one!.includes(a)));
  assert.ok(!one!.includes('--files-from'));

  // Past the limit, the paths are split over several commands, in order, none lost.
  const split = checksumCheckArgs(target, rels, 'd/', 420);
  assert.equal(split.length, 2);
  assert.deepEqual(split.flatMap((a) => a.slice(a.indexOf('--') + 1, -1)), rels.map((r) => `./${r}`));
  assert.deepEqual(checksumCheckArgs(target, [], 'd/'), []);
});
