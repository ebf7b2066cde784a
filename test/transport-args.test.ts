// The upload's rsync command line: a tree sent against yesterday's goes over its own compressed
// ssh connection (its file list is most of what crosses), everything else over the run's master.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uploadArgs } from '../src/plan/transport-args.js';

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
