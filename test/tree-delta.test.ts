// What rsync is told when the new backup's mail tree starts as a copy of the previous one's: a
// listed path that is missing here is deleted there, so the list decides what the backup loses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planTreeDelta } from '../src/plan/tree-delta.js';

test('sends new and changed files, deletes gone files and a gone folder once at its top, never lists a folder that still exists', () => {
  const d = planTreeDelta({
    dirs: ['a', 'a/cur', 'a/new', 'a/.New', 'a/.New/cur'],
    prevDirs: ['a', 'a/cur', 'a/new', 'a/.Old', 'a/.Old/cur', 'a/.Old/tmp'],
    changed: ['a/new/1', 'a/dovecot-uidlist', 'a/cur/2:2,S'],
    gone: ['a/cur/2', 'a/cur/3', 'a/.Old/cur/9'],
    linked: new Set(['a/cur/2:2,S']),
  });
  assert.deepEqual(new Set(d.list), new Set(['a/.New', 'a/.New/cur', 'a/new/1', 'a/dovecot-uidlist', 'a/cur/2', 'a/cur/3', 'a/.Old']));
  assert.deepEqual([...d.send].sort(), ['a/dovecot-uidlist', 'a/new/1']);
  assert.equal(d.deletes, 3);
});

test('a gone file whose folder the previous folder list lacks still goes with its topmost missing folder', () => {
  const d = planTreeDelta({ dirs: ['a'], prevDirs: ['a'], changed: [], gone: ['a/x/y/f'], linked: new Set() });
  assert.deepEqual(d.list, ['a/x']);
});

test('no change: nothing to list', () => {
  const d = planTreeDelta({ dirs: ['a', 'a/cur'], prevDirs: ['a', 'a/cur'], changed: [], gone: [], linked: new Set() });
  assert.deepEqual(d.list, []);
  assert.equal(d.deletes, 0);
});

test('only a box whose rsync refuses the options goes the whole way; a dead link fails the run', async () => {
  const { receiverRefusedOptions } = await import('../src/backup/tree-copy.js');
  const { UserError } = await import('../src/errors.js');
  const failed = (tail: string[]) => new UserError('failed', `uploading vmail to the Storage Box failed (exit 12): ${tail.at(-1)}`, tail);
  // What rsync 3.0 as the receiver answers to --delete-missing-args (measured with a receiver given an option it lacks).
  assert.equal(receiverRefusedOptions(failed(['rsync: on remote machine: --delete-missing-args: unknown option', 'rsync error: syntax or usage error (code 1) at main.c(1886) [server=3.0.9]', 'rsync: connection unexpectedly closed (0 bytes received so far) [sender]'])), true);
  assert.equal(receiverRefusedOptions(failed(['rsync: [sender] io timeout after 10 seconds -- exiting', 'rsync error: timeout in data send/receive (code 30) at io.c(248) [sender=3.5.0]'])), false);
  assert.equal(receiverRefusedOptions(failed(['rsync: connection unexpectedly closed (0 bytes received so far) [sender]', 'rsync error: error in rsync protocol data stream (code 12) at io.c(285) [sender=3.5.0]'])), false);
  assert.equal(receiverRefusedOptions(new UserError('interrupted', 'uploading vmail was stopped because the run was interrupted', ['unknown option'])), false);
});
