// Pure parts of the message search: what the admin types becomes the doveadm words and the
// maildir folder on disk that are fetched.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backupsToSearch, isMessagePath, maildirFolder, mergeFound, splitQuery, type Candidate } from '../src/plan/message-search.js';

describe('message search planning', () => {
  it('splits a query as a shell would, so quoted phrases stay one search word', () => {
    assert.deepEqual(splitQuery(`subject "the invoice" from 'Bob B'  since 2026-11-01`), ['subject', 'the invoice', 'from', 'Bob B', 'since', '2026-11-01']);
  });
  it('maps folder names as dovecot shows them to the Maildir++ folders on disk', () => {
    assert.equal(maildirFolder('INBOX'), '');
    assert.equal(maildirFolder('Archive/2024'), '.Archive.2024');
    assert.equal(maildirFolder('Entwürfe'), '.Entw&APw-rfe');
    assert.equal(maildirFolder('Sent Items'), '.Sent Items');
    assert.ok(isMessagePath('.Sent/cur/1.M1P1.h:2,S', '.Sent'));
    assert.ok(!isMessagePath('.Sent/cur/1.M1P1.h:2,S', ''));
    assert.ok(!isMessagePath('dovecot-uidlist'));
  });
  it('searches the newest backup first and bounds the search by --since or the wizard\'s pick', () => {
    const names = ['mailcow-2026-11-01-03-00-00', 'mailcow-2026-11-03-03-00-00', 'mailcow-2026-11-02-03-00-00', '.incomplete-mailcow-2026-11-04-03-00-00'];
    assert.deepEqual(backupsToSearch(names, {}), ['mailcow-2026-11-03-03-00-00', 'mailcow-2026-11-02-03-00-00', 'mailcow-2026-11-01-03-00-00']);
    assert.deepEqual(backupsToSearch(names, { since: new Date(2026, 10, 2) }), ['mailcow-2026-11-03-03-00-00', 'mailcow-2026-11-02-03-00-00']);
    assert.deepEqual(backupsToSearch(names, { upTo: 'mailcow-2026-11-02-03-00-00' }), ['mailcow-2026-11-02-03-00-00', 'mailcow-2026-11-01-03-00-00']);
  });
  it('lists a message once, from the newest backup that has it, whatever its flags or folder there', () => {
    const m = (backup: string, folder: string, hash: string): Candidate => ({ guid: '1.M1P1.h,S=10', folder, date: '2026-01-01T00:00:00.000Z', from: 'bob', subject: 's', size: 10, backup, path: `${folder}/cur/x`, hash, inMailbox: false });
    const merged = mergeFound([[m('new', 'Archive', 'h1')], [m('old', 'INBOX', 'h1'), m('old', 'INBOX', 'h2')]]);
    assert.deepEqual(merged.map((x) => `${x.backup}/${x.folder}/${x.hash}`), ['new/Archive/h1', 'old/INBOX/h2']);
  });
});
