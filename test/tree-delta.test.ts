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
