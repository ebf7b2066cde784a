// Pure parts of the restore: menu reading and picking by label (whatever the order), the plan,
// the pre-restore checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { COMPONENTS } from '../src/config/schema.js';
import { menuKind, parseMenuLine, pickDataset, pickRestorePoint, stripAnsi } from '../src/restore/menu.js';
import { mailboxDir, parseComponents, planText, preRestoreChecks, resolveBackup, type BackupRecord, type HostFacts } from '../src/restore/plan.js';
import { backupMailboxes, chosenMailboxBytes, DONE, mailboxRows } from '../src/restore/mailbox-list.js';
import { downloadFilters } from '../src/restore/download.js';
import { mergedFolderName } from '../src/restore/mailbox.js';
import { backupMessageKeys, replaceLoss } from '../src/restore/replace-loss.js';

const LABELS: Record<string, string> = { vmail: 'Mail directory (/var/vmail)', crypt: 'Crypt data', redis: 'Redis DB', rspamd: 'Rspamd data', postfix: 'Postfix data', mysql: 'SQL DB' };

function shuffled<T>(a: T[], seed: number): T[] {
  const out = [...a];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('mailcow restore menus', () => {
  it('picks every dataset by its label in any order', () => {
    for (let seed = 1; seed < 40; seed++) {
      const order = shuffled([...COMPONENTS], seed);
      const lines = ['[ 0 ] - all', ...order.map((c, i) => `[ ${i + 1} ] - ${LABELS[c]}`)];
      const items = lines.map((l) => parseMenuLine(l)!);
      assert.equal(menuKind(items), 'dataset');
      for (const c of COMPONENTS) {
        const p = pickDataset(items, c);
        assert.ok(p.ok);
        assert.equal(p.ok && p.number, order.indexOf(c) + 1);
      }
    }
  });
  it('refuses an rspamd entry of another architecture and a missing dataset', () => {
    const items = ['[ 0 ] - all', '[ 1 ] - Redis DB', '\x1b[31m[ NaN ] - Rspamd data (incompatible Arch, cannot restore it)\x1b[0m'].map((l) => parseMenuLine(l)!);
    const r = pickDataset(items, 'rspamd');
    assert.ok(!r.ok && /will not restore rspamd/.test(r.reason));
    assert.ok(!pickDataset(items, 'mysql').ok);
    assert.equal(stripAnsi('\x1b[31mred\x1b[0m'), 'red');
  });
  it('accepts only the downloaded restore point, and only when it is the only one', () => {
    const one = [parseMenuLine('[ 1 ] - /var/tmp/r/mailcow-2026-01-02-03-04-05/')!];
    assert.ok(pickRestorePoint(one, '/var/tmp/r/mailcow-2026-01-02-03-04-05').ok);
    assert.ok(!pickRestorePoint(one, '/var/tmp/r/mailcow-2026-01-02-03-04-06').ok);
    const two = [...one, parseMenuLine('[ 2 ] - /var/tmp/r/mailcow-2026-01-03-03-04-05/')!];
    assert.ok(!pickRestorePoint(two, '/var/tmp/r/mailcow-2026-01-02-03-04-05').ok);
  });
});

describe('restore plan', () => {
  const record: BackupRecord = {
    name: 'mailcow-2026-11-23-10-00-00',
    components: [...COMPONENTS],
    archives: [{ component: 'crypt', file: 'backup_crypt.tar.zst', bytes: 100 }],
    vmail: { dir: 'vmail', files: 1, dirs: 1, bytes: 1000, owner: { uid: 5000, gid: 5000, exceptions: [] }, modes: {} },
  };
  const conf = { DBNAME: 'mailcow', DBUSER: 'mailcow', DBPASS: 'a', DBROOT: 'b', MAILDIR_SUB: 'Maildir', MAILCOW_HOSTNAME: 'mail.example.com' };
  const facts = (o: Partial<HostFacts> = {}): HostFacts => ({ liveConf: conf, backupConf: conf, backupArch: 'x86_64', hostArch: 'x86_64', cryptKeysMatch: true, freeBytes: 1e12, needBytes: 1e6, downloadDir: '/d', missingMailboxes: [], ...o });
  const status = (cs: ReturnType<typeof preRestoreChecks>, t: string) => cs.find((c) => c.title === t)?.status;

  it('all OK on the same host', () => {
    const cs = preRestoreChecks(record, { components: [...COMPONENTS], mailboxes: [], mode: 'replace' }, facts());
    assert.deepEqual(cs.filter((c) => c.status !== 'OK'), []);
  });
  it('fresh host: DB credentials WARN, MAILDIR_SUB FAIL, crypt FAIL without crypt, disk FAIL', () => {
    const live = { ...conf, DBPASS: 'other', MAILDIR_SUB: 'mail' };
    const cs = preRestoreChecks(record, { components: ['vmail'], mailboxes: [], mode: 'replace' }, facts({ liveConf: live, cryptKeysMatch: false, freeBytes: 10 }));
    assert.equal(status(cs, 'DB credentials'), 'WARN');
    assert.equal(status(cs, 'MAILDIR_SUB'), 'FAIL');
    assert.equal(status(cs, 'crypt keys'), 'FAIL');
    assert.equal(status(cs, 'local disk'), 'FAIL');
    const arch = preRestoreChecks(record, { components: ['rspamd'], mailboxes: [], mode: 'replace' }, facts({ backupArch: 'aarch64' }));
    assert.equal(status(arch, 'architecture'), 'WARN');
  });
  it('resolves latest and refuses names that are not published backups', () => {
    const names = ['mailcow-2026-11-22-10-00-00', 'mailcow-2026-11-23-10-00-00', '.incomplete-mailcow-2026-11-24-10-00-00'];
    assert.deepEqual(resolveBackup(names, 'latest'), { ok: true, name: 'mailcow-2026-11-23-10-00-00', skipped: [] });
    // 'latest' is the newest not known damaged, and names what it skipped.
    assert.deepEqual(resolveBackup(names, 'latest', (n) => n === 'mailcow-2026-11-23-10-00-00'), { ok: true, name: 'mailcow-2026-11-22-10-00-00', skipped: ['mailcow-2026-11-23-10-00-00'] });
    assert.match((resolveBackup(names, 'latest', () => true) as { reason: string }).reason, /every published backup is known to be DAMAGED/);
    assert.ok(!resolveBackup(names, '../etc').ok);
    assert.ok(!resolveBackup(names, 'mailcow-2026-11-21-10-00-00').ok);
  });
  it('parses components and mailbox addresses strictly', () => {
    assert.deepEqual(parseComponents('vmail, crypt'), ['vmail', 'crypt']);
    assert.equal(parseComponents('all').length, 6);
    assert.throws(() => parseComponents('vmail,foo'), /unknown component 'foo'/);
    assert.equal(mailboxDir('Alice@Example.com'), 'example.com/alice');
    assert.equal(mailboxDir('../x@example.com'), undefined);
    assert.equal(mailboxDir('a/b@example.com'), undefined);
    assert.equal(mergedFolderName('.Sent', 'Restored-2026-11-23'), '.Restored-2026-11-23.Sent');
    assert.ok(downloadFilters({ components: [], mailboxDirs: ['example.com/alice'], vmailDir: 'vmail' }).includes('--include=/vmail/example.com/alice/***'));
  });
  it('replace: counts as removed only messages the backup does not hold (a flag change or a move is not a loss), and the plan names them', () => {
    const keys = backupMessageKeys(['cur/100.M1P1.h:2,', 'cur/200.M2P2.h:2,S', '.Sent/cur/300.M3P3.h:2,S', 'dovecot-uidlist', 'subscriptions']);
    const t = Date.UTC(2026, 11, 5, 9, 30);
    const loss = replaceLoss(
      [
        { path: 'cur/100.M1P1.h:2,S', bytes: 10, mtimeMs: t - 1000 }, // flagged since
        { path: '.Archive/cur/200.M2P2.h:2,S', bytes: 10, mtimeMs: t - 1000 }, // moved since
        { path: 'new/400.M4P4.h', bytes: 2048, mtimeMs: t }, // arrived since
        { path: '.Sent/cur/500.M5P5.h:2,S', bytes: 1024, mtimeMs: t - 60_000 }, // sent since
        { path: 'dovecot-uidlist', bytes: 5, mtimeMs: t },
      ],
      keys,
    );
    assert.deepEqual({ ...loss, sample: loss.sample }, { messages: 2, bytes: 3072, folders: [['INBOX', 1], ['Sent', 1]], sample: ['new/400.M4P4.h', '.Sent/cur/500.M5P5.h:2,S'], newestMs: t });
    const record = { name: 'mailcow-2026-12-01-03-00-00', components: [], archives: [], vmail: { dir: 'vmail', files: 1, dirs: 1, bytes: 1, owner: { uid: 5000, gid: 5000, exceptions: [] }, modes: {} } } as BackupRecord;
    const lines = planText(record, { components: [], mailboxes: ['a@example.com'], mode: 'replace' }, { liveConf: {}, backupConf: {}, replaceLoss: { 'a@example.com': loss } }, '/opt/mailcow-dockerized');
    assert.ok(lines.includes('    REMOVES 2 messages (3.00 KiB) the backup does not hold (INBOX 1, Sent 1); the newest from 2026-12-05 09:30 UTC: new/400.M4P4.h, .Sent/cur/500.M5P5.h:2,S; --mode merge keeps them'), lines.join('\n'));
    const merge = planText(record, { components: [], mailboxes: ['a@example.com'], mode: 'merge' }, { liveConf: {}, backupConf: {} }, '/x');
    assert.ok(merge.some((l) => /a@example\.com: add the backup's mail as folder "Restored-2026-12-01" next to the current mail \(nothing is removed\)/.test(l)), merge.join('\n'));
  });
  it('a plan lists only what will happen: the watchdog only around archive components', () => {
    const mailboxOnly = planText(record, { components: [], mailboxes: ['alice@example.com'], mode: 'merge' }, facts(), '/opt/mailcow-dockerized');
    assert.ok(!mailboxOnly.some((l) => /watchdog/.test(l)), mailboxOnly.join('\n'));
    const withCrypt = planText(record, { components: ['crypt'], mailboxes: [], mode: 'replace' }, facts(), '/opt/mailcow-dockerized');
    assert.ok(withCrypt.some((l) => /watchdog-mailcow is stopped and started/.test(l)));
  });
});

describe('the mailboxes of a backup', () => {
  const record: BackupRecord = { name: 'mailcow-2026-11-23-10-00-00', components: ['vmail'], archives: [], vmail: { dir: 'vmail', files: 5, dirs: 9, bytes: 1e9, owner: { uid: 5000, gid: 5000, exceptions: [] }, modes: {} } };
  const paths = [
    'vmail/example.com/alice/Maildir/cur/1700000000.M1P1.mail,S=1000,W=1020:2,S',
    'vmail/example.com/alice/Maildir/.Sent/cur/1700000001.M2P1.mail,S=2000,W=2040:2,S',
    'vmail/example.com/alice/Maildir/new/1700000002.M3P1.mail,S=500,W=510',
    'vmail/example.com/alice/Maildir/dovecot-uidlist',
    'vmail/example.org/bob/Maildir/cur/1700000003.M4P1.mail,S=300,W=310:2,',
    'vmail/example.org/README',
    'backup_crypt.tar.zst',
  ];
  it('from an older backup\'s manifest: messages counted, size from dovecot\'s S= in the names', () => {
    const list = backupMailboxes(record, paths);
    assert.deepEqual(list.map((m) => [m.address, m.messages, m.bytes, m.exact]), [['alice@example.com', 3, 3500, false], ['bob@example.org', 1, 300, false]]);
    // The disk check of a mailbox restore counts the chosen mailbox, not the 1 GB tree.
    assert.equal(chosenMailboxBytes(list, ['bob@example.org']), 300);
  });
  it('from the sizes the backup recorded, when it did', () => {
    const list = backupMailboxes({ ...record, vmail: { ...record.vmail!, mailboxes: { 'example.com/alice': { messages: 3, bytes: 4096 } } } }, paths);
    assert.deepEqual(list.map((m) => [m.address, m.messages, m.bytes, m.exact]), [['alice@example.com', 3, 4096, true]]);
  });
  it('search rows: narrowed by the term, a typed address offered, "done" once something is chosen', () => {
    const list = backupMailboxes(record, paths).map((m) => ({ ...m, onHost: m.address !== 'bob@example.org' }));
    assert.deepEqual(mailboxRows(list, 'example.org', []).map((r) => r.value), ['bob@example.org']);
    assert.match(mailboxRows(list, 'example.org', [])[0]!.name, /NOT ON THIS HOST/);
    assert.deepEqual(mailboxRows(list, 'carol@example.net', []).map((r) => r.value), ['carol@example.net']);
    assert.deepEqual(mailboxRows(list, undefined, ['bob@example.org']).map((r) => r.value), [DONE, 'alice@example.com', 'bob@example.org']);
  });
});
