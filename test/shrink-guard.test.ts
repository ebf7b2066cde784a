// The shrink guard (issue 13, point 3): a run whose backup is far smaller than the newest
// published one (a fresh standby host, a lost disk, an `rm` in the vmail volume) is refused
// before anything is sent, says so in one line and in the e-mail, and leaves the box as it was;
// `--accept-shrink` publishes it deliberately. Against the loopback box with real rsync.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { describeShrink, measuresOfRecord, shrinkOf, shrinkRefusal } from '../src/plan/shrink.js';
import { configSchema } from '../src/config/schema.js';
import { parseConfigText } from '../src/config/load.js';
import type { UserError } from '../src/errors.js';
import { startMailSink } from './support/listeners.js';
import { backup, backupsOnBox, publishedOnBox, removeSandbox } from './support/cli.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { tmpdir } from 'node:os';

describe('shrink comparison (pure)', () => {
  test('a record counts its mailboxes from the per-mailbox totals it keeps', () => {
    const record = { bytes: 9000, vmail: { files: 40, mailboxes: { 'example.com/alice': { messages: 30, bytes: 7000 }, 'example.com/bob': { messages: 5, bytes: 1000 } } } };
    assert.deepEqual(measuresOfRecord(record), { mailboxes: 2, mailFiles: 40, bytes: 9000 });
  });

  test('a measure down by more than the threshold is reported; at the threshold, not', () => {
    const before = { mailboxes: 10, mailFiles: 1000, bytes: 100 << 20 };
    assert.deepEqual(shrinkOf(before, { mailboxes: 10, mailFiles: 500, bytes: 50 << 20 }, 50), []);
    assert.deepEqual(shrinkOf(before, { mailboxes: 10, mailFiles: 499, bytes: 100 << 20 }, 50), [{ measure: 'mailFiles', before: 1000, after: 499 }]);
    assert.deepEqual(shrinkOf(before, { mailboxes: 1, mailFiles: 3, bytes: 1 << 20 }, 50).map((s) => s.measure), ['mailboxes', 'mailFiles', 'bytes']);
    assert.deepEqual(shrinkOf(before, { mailboxes: 0, mailFiles: 0, bytes: 0 }, 0), [], '0 turns the guard off');
    assert.deepEqual(shrinkOf(before, { mailboxes: 8, mailFiles: 800, bytes: 80 << 20 }, 10).map((s) => s.measure), ['mailboxes', 'mailFiles', 'bytes']);
  });

  test('an older record without a mailbox count compares what it has', () => {
    const old = measuresOfRecord({ bytes: 5000, vmail: { files: 100 } });
    assert.deepEqual(old, { mailboxes: undefined, mailFiles: 100, bytes: 5000 });
    assert.deepEqual(shrinkOf(old, { mailboxes: 0, mailFiles: 100, bytes: 5000 }, 50), []);
    assert.deepEqual(shrinkOf(measuresOfRecord({ bytes: 5000 }), { bytes: 100 }, 50), [{ measure: 'bytes', before: 5000, after: 100 }]);
  });

  test('the refusal is one line naming what shrank, the backup compared with and both ways to accept it', () => {
    const line = shrinkRefusal('mailcow-2026-11-23-03-00-00', [{ measure: 'mailboxes', before: 12, after: 1 }, { measure: 'bytes', before: 2 * 1024 ** 3, after: 3 * 1024 ** 2 }], 50);
    assert.doesNotMatch(line, /\n/);
    assert.match(line, /newest published one, mailcow-2026-11-23-03-00-00: mailboxes 12 → 1 \(-92 %\), size 2\.00 GiB → 3\.00 MiB \(-100 %\); not published \(SHRINK_GUARD_PERCENT=50\)/);
    assert.match(line, /restore first \(sudo restore-from-hetzner\)/);
    assert.match(line, /'backup-to-hetzner run --accept-shrink' \(or set SHRINK_GUARD_PERCENT=0\)/);
    assert.equal(describeShrink([{ measure: 'mailFiles', before: 3400, after: 12 }]), 'mail files 3400 → 12 (-100 %)');
  });

  test('SHRINK_GUARD_PERCENT: default 50, 0 allowed, a bad value named in one line', () => {
    const base = { HETZNER_HOST: 'u1.your-storagebox.de', HETZNER_USER: 'u1' };
    assert.equal(configSchema.parse(base).SHRINK_GUARD_PERCENT, 50);
    assert.equal(configSchema.parse({ ...base, SHRINK_GUARD_PERCENT: '0' }).SHRINK_GUARD_PERCENT, 0);
    for (const [bad, why] of [['100', /must be at most 99/], ['half', /must be a whole number from 0 to 99/]] as const) {
      const text = `HETZNER_HOST=u1.your-storagebox.de\nHETZNER_USER=u1\nSHRINK_GUARD_PERCENT=${bad}\n`;
      assert.throws(() => parseConfigText(text, '/etc/x.env'), (e: UserError) => e.details.length === 1 && /^\/etc\/x\.env: SHRINK_GUARD_PERCENT must .*\(example: SHRINK_GUARD_PERCENT=50\)$/.test(e.details[0]!) && why.test(e.details[0]!));
    }
  });
});

describe('a run far smaller than the newest backup', () => {
  let dir: string;
  let sb: Sandbox;
  let smtp: SMTPServer;
  const mails: string[] = [];
  let boxBackups: string;
  let names: string[];

  before(async () => {
    smtp = await startMailSink(mails);
    dir = await mkdtemp(join(tmpdir(), 'mcb-shrink-'));
    sb = await createSandbox({
      dir,
      mailBytes: 1024 * 1024,
      seed: 7,
      strict: true,
      config: {
        EMAIL_NOTIFICATIONS: 'true',
        NOTIFICATION_EMAIL: 'admin@example.test',
        NOTIFICATION_FROM: 'backup@example.test',
        NOTIFY_ON: 'failure',
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
      },
    });
    boxBackups = join(sb.box.root, sb.remotePath);
    names = await backupsOnBox(sb, 2);
  });

  after(async () => {
    await removeSandbox(sb, dir);
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  /** Every mailbox but the first gone from the vmail volume, as on a fresh host or after an `rm` in it (idempotent). */
  const shrinkVmail = async () => {
    const vmail = sb.mailcow.volume('vmail');
    let kept = 0;
    for (const domain of (await readdir(vmail)).sort()) {
      for (const user of (await readdir(join(vmail, domain))).sort()) {
        if (kept++ === 0) continue;
        await rm(join(vmail, domain, user), { recursive: true });
      }
    }
  };

  test('is refused with one line and an e-mail saying what shrank; the box keeps its newest backup', async () => {
    const newest = names[1]!;
    const record = JSON.parse(await readFile(join(boxBackups, newest, 'backup.json'), 'utf8'));
    assert.equal(Object.keys(record.vmail.mailboxes).length, 6, 'the record lists the mailboxes');
    await shrinkVmail();
    const mailsBefore = mails.length;
    const boxBefore = (await readdir(boxBackups)).sort();
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(r.stdout, /backup FAILED in phase compare \(exit 1\)/);
    assert.match(errors[0]!, /^error: this backup is far smaller/);
    const line = new RegExp(`newest published one, ${newest}: mailboxes 6 → 1 \\(-83 %\\), mail files \\d+ → \\d+ \\(-\\d+ %\\).*not published \\(SHRINK_GUARD_PERCENT=50\\).*restore first \\(sudo restore-from-hetzner\\).*'backup-to-hetzner run --accept-shrink' \\(or set SHRINK_GUARD_PERCENT=0\\)`);
    assert.match(errors[0]!, line);
    assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');

    // Nothing new on the box: no published folder, no staging folder that could pass for a backup.
    assert.deepEqual((await readdir(boxBackups)).sort(), boxBefore);
    assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), names);
    const list = await backup(['list', '--config', sb.configPath], sb.env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout.split('\n')[1]!, new RegExp(`^${newest} `), 'list still shows the old newest first');

    // The e-mail says the same.
    assert.equal(mails.length, mailsBefore + 1);
    const mail = await simpleParser(mails.at(-1)!);
    assert.match(mail.subject ?? '', /^\[mailcow-backup\] FAILED \S+ — compare$/);
    const errorRow = (mail.text ?? '').split('\n').find((l) => l.startsWith('Error:'));
    assert.equal(errorRow?.replace(/^Error:\s+/, '').trim(), errors[0]!.replace(/^error: /, ''), 'the e-mail carries the same line');
  });

  test('--accept-shrink publishes it, and says so in the report', async () => {
    await shrinkVmail();
    const before = await publishedOnBox(sb.box.root, sb.remotePath);
    const r = await backup(['run', '--accept-shrink', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /published although far smaller than .*\(--accept-shrink\): mailboxes 6 → 1/);
    const now = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.equal(now.length, before.length + 1);
    const record = JSON.parse(await readFile(join(boxBackups, now.at(-1)!, 'backup.json'), 'utf8'));
    assert.equal(Object.keys(record.vmail.mailboxes).length, 1);
    // The next ordinary run compares with the accepted backup: no refusal.
    const next = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(next.code, 0, next.stderr);
  });

  test('--accept-shrink belongs to run only', async () => {
    const r = await backup(['list', '--accept-shrink', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--accept-shrink is for 'run' only/);
  });
});
