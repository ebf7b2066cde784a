// Single-message restore by search, against real dovecot: the stand-in's dovecot-mailcow runs
// Debian's doveadm on the vmail volume (passwd-file userdb, mailcow's mail location).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { backup, flipByte, publishedOnBox, RESTORE_CLI, runCli } from './support/cli.js';
import { startWizard, type Terminal } from './support/tmux.js';

const ALICE = 'alice@example.com';
const isRoot = process.getuid?.() === 0;

/** A message as a mail client would have it, written into a live maildir folder as dovecot names its files. */
async function deliver(maildir: string, folder: string, o: { subject: string; id: string; time: number; body?: string }): Promise<{ file: string; bytes: Buffer }> {
  const bytes = Buffer.from(
    [`From: Bob <bob@vendor.example>`, `To: Alice <${ALICE}>`, `Subject: ${o.subject}`, `Date: ${new Date(o.time * 1000).toUTCString().replace('GMT', '+0000')}`, `Message-ID: <${o.id}@vendor.example>`, '', o.body ?? `Dear Alice,\nplease find the numbers for ${o.subject}.\nBob\n`].join('\n'),
  );
  const dir = path.join(maildir, folder, 'cur');
  const file = path.join(dir, `${o.time}.M${o.id.length}P${o.time % 9973}.standin,S=${bytes.length}:2,S`);
  await fsp.writeFile(file, bytes);
  if (isRoot) await fsp.chown(file, 5000, 5000);
  return { file, bytes };
}

const scratchLeft = async (vol: string) => (await fsp.readdir(vol)).filter((n) => n.startsWith('.mailcow-backup-search-'));

describe('single-message restore by search (real doveadm)', { timeout: 600_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let names: string[];
  let vol: string;
  let inbox: string;
  const env = () => ({ ...sb.env, MAILCOW_BACKUP_TEST_CLOCK: '2026-12-10T12:00:00Z' });
  const search = (args: string[]) => runCli(RESTORE_CLI, ['--config', sb.configPath, '--mailbox', ALICE, ...args], env(), 180_000);
  let invoice: { file: string; bytes: Buffer };
  let kept: { file: string; bytes: Buffer };
  let oldest: { file: string; bytes: Buffer };
  let term: Terminal | undefined;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'message-restore-'));
    sb = await createSandbox({ dir, mailBytes: 1024 * 1024, seed: 11, dovecot: {} });
    vol = sb.mailcow.volume('vmail');
    inbox = path.join(vol, 'example.com/alice/Maildir');
    const run = async (day: string) => {
      const r = await backup(['run', '--config', sb.configPath], { ...sb.env, MAILCOW_BACKUP_TEST_CLOCK: `2026-12-0${day}T03:00:00Z` });
      assert.equal(r.code, 0, r.stderr);
    };
    // Backup 1 alone holds "Quarterly plan 1999": it was deleted right after.
    oldest = await deliver(inbox, '', { subject: 'Quarterly plan 1999', id: 'q1999', time: 1_700_000_000 });
    kept = await deliver(inbox, '.Sent', { subject: 'Still here 77', id: 'kept77', time: 1_700_100_000 });
    await run('1');
    await fsp.rm(oldest.file);
    // Backup 2 holds the invoice, deleted after it.
    invoice = await deliver(inbox, '', { subject: 'Invoice from Bob 4711', id: 'inv4711', time: 1_700_200_000 });
    await run('2');
    await fsp.rm(invoice.file);
    await run('3');
    names = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.equal(names.length, 3);
  });
  after(async () => {
    term?.close();
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('finds a message deleted after backup 2 by subject and restores it into Restored-<date>, byte for byte', async () => {
    const r = await search(['--search', 'subject "Invoice from Bob 4711"', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`1 message\\(s\\) of ${ALICE} match`));
    assert.match(r.stdout, new RegExp(`${names[1]}  INBOX .*Invoice from Bob 4711`), r.stdout);
    assert.match(r.stdout, /restored 1 message\(s\) into folder Restored-2026-12-10 of alice@example.com; 0 skipped/);
    const restoredDir = path.join(inbox, '.Restored-2026-12-10.INBOX');
    const files = [...(await fsp.readdir(path.join(restoredDir, 'cur'))), ...(await fsp.readdir(path.join(restoredDir, 'new')))];
    assert.equal(files.length, 1, files.join(', '));
    const sub = (await fsp.readdir(path.join(restoredDir, 'cur'))).length ? 'cur' : 'new';
    assert.deepEqual(await fsp.readFile(path.join(restoredDir, sub, files[0]!)), invoice.bytes);
    // The backup's own copy is the same bytes.
    const onBox = path.join(sb.box.root, sb.remotePath, names[1]!, 'vmail/example.com/alice/Maildir/cur', path.basename(invoice.file));
    assert.deepEqual(await fsp.readFile(onBox), invoice.bytes);
    // dovecot knows it there (indexes right: the live mailbox lists it).
    const seen = spawnSync('docker', ['compose', 'exec', '-T', 'dovecot-mailcow', 'doveadm', 'search', '-u', ALICE, 'mailbox', 'Restored-2026-12-10/INBOX', 'all'], { cwd: sb.mailcow.path, env: { ...process.env, ...sb.env }, encoding: 'utf8' });
    assert.equal(seen.stdout.trim().split('\n').length, 1, seen.stdout + seen.stderr);
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it('skips (and counts) a message the mailbox still has', async () => {
    const r = await search(['--search', 'subject "Still here 77"', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Still here 77.*\[still in the mailbox\]/);
    // Three backups hold it; it is listed once, from the newest.
    assert.equal(r.stdout.split('\n').filter((l) => /^  mailcow-.*Still here 77/.test(l)).length, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`${names[2]}  Sent`));
    assert.match(r.stdout, /restored 0 message\(s\) into folder Restored-2026-12-10 of alice@example.com; 1 skipped \(still in the mailbox\)/);
    assert.equal(await fsp.stat(path.join(inbox, '.Restored-2026-12-10.Sent')).catch(() => undefined), undefined);
    assert.deepEqual(await fsp.readFile(kept.file), kept.bytes);
  });

  it('searches across three backups: a message only the oldest has is found there; latest alone says which backup it searched', async () => {
    const r = await search(['--search', 'subject "Quarterly plan 1999"']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${names[0]}  INBOX .*Quarterly plan 1999`), r.stdout);
    assert.match(r.stdout, new RegExp(`3 backup\\(s\\) searched: ${names[2]}, ${names[1]}, ${names[0]}`));
    assert.match(r.stdout, /run the same command with --yes/);
    const latest = await search(['--search', 'subject "Quarterly plan 1999"', '--backup', 'latest']);
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stdout, new RegExp(`no message of ${ALICE} matches 'subject "Quarterly plan 1999"'; 1 backup\\(s\\) searched: ${names[2]}`));
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it("an invalid query exits 2 with dovecot's own message, before anything is fetched", async () => {
    const r = await search(['--search', 'subjectt invoice']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /dovecot refuses the search query: Unknown argument SUBJECTT/);
    assert.doesNotMatch(r.stderr, /downloaded/);
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it('a mailbox no backup holds is named as such', async () => {
    await fsp.mkdir(path.join(vol, 'example.com/newbie/Maildir/cur'), { recursive: true });
    if (isRoot) spawnSync('chown', ['-R', '5000:5000', path.join(vol, 'example.com/newbie')]);
    const r = await runCli(RESTORE_CLI, ['--config', sb.configPath, '--mailbox', 'newbie@example.com', '--search', 'all'], env(), 180_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`no backup searched holds mail of newbie@example.com \\(searched: ${names[2]}, ${names[1]}, ${names[0]}\\)`));
    await fsp.rm(path.join(vol, 'example.com/newbie'), { recursive: true });
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it('removes the scratch folder after a failed download, and a dead run\'s leftover', async () => {
    const leftover = path.join(vol, '.mailcow-backup-search-999999');
    await fsp.mkdir(path.join(leftover, 'x'), { recursive: true });
    const victim = path.join(sb.box.root, sb.remotePath, names[2]!, 'vmail/example.com/alice/Maildir/.Sent/cur', path.basename(kept.file));
    await flipByte(victim);
    try {
      const r = await search(['--search', 'all', '--folder', 'Sent', '--backup', 'latest']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /does not match|differ/);
    } finally {
      await flipByte(victim);
    }
    assert.deepEqual(await scratchLeft(vol), []);
    // dovecot-mailcow stopped: docker's refusal becomes one line with the fix.
    const compose = (a: string) => spawnSync('docker', ['compose', a, 'dovecot-mailcow'], { cwd: sb.mailcow.path, env: { ...process.env, ...sb.env } });
    compose('stop');
    try {
      const r = await search(['--search', 'all']);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /dovecot-mailcow is not running: start it \(cd .* && docker compose up -d dovecot-mailcow\)/);
    } finally {
      compose('start');
    }
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it('the wizard: pick the mailbox, search, tick a message in a checkbox list, confirm; it is restored', async () => {
    const t = (term = startWizard(`message-wizard-${process.pid}`, RESTORE_CLI, ['--config', sb.configPath], env()));
    await t.waitFor(/Which backup\?/);
    t.keys('Enter'); // the newest: the search goes on into the older ones
    await t.waitFor(/What should be restored\?/);
    t.keys('Down', 'Down', 'Down');
    await t.waitFor(/[❯>] one or more messages/);
    t.keys('Enter');
    await t.waitFor(/Mailbox to search/);
    t.type('alice@');
    await t.waitFor(/[❯>] \[ \] alice@example\.com/);
    t.keys('Enter');
    await t.waitFor(/Folder \(INBOX/);
    t.type('INBOX');
    t.keys('Enter');
    await t.waitFor(/Search \(dovecot's search language/);
    t.type('subject "Quarterly plan"');
    t.keys('Enter');
    const list = await t.waitFor(/message\(s\) found, newest first/, 120_000);
    assert.match(list, new RegExp(`${names[0]}  INBOX .*Quarterly plan 1999`), list);
    t.keys('Space');
    t.keys('Enter');
    await t.waitFor(/Type RESTORE to restore 1 message\(s\)/);
    t.type('RESTORE');
    t.keys('Enter');
    const done = await t.waitFor(/WIZARD-EXIT=\d+/, 60_000);
    assert.match(done, /WIZARD-EXIT=0/, done);
    assert.match(done, /1 message\(s\) of alice@example\.com into folder Restored-2026-12-10/);
    const restored = path.join(inbox, '.Restored-2026-12-10.INBOX');
    const contents = await Promise.all(['cur', 'new'].flatMap((d) => [d]).map(async (d) => Promise.all((await fsp.readdir(path.join(restored, d)).catch(() => [] as string[])).map((n) => fsp.readFile(path.join(restored, d, n))))));
    assert.ok(contents.flat().some((b) => b.equals(oldest.bytes)), 'the picked message is back, byte for byte');
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it('removes the scratch folder when stopped by SIGTERM', async () => {
    const p = spawn(process.execPath, [RESTORE_CLI, '--config', sb.configPath, '--mailbox', ALICE, '--search', 'all'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const exit = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      p.stderr.on('data', (d) => {
        err += d;
        if (/searching mailcow-/.test(err)) resolve();
      });
      void exit.then(() => reject(new Error(`exited before searching:\n${err}`)));
    });
    assert.ok((await scratchLeft(vol)).length === 1, 'the scratch folder exists while it searches');
    p.kill('SIGTERM');
    assert.equal(await exit, 143, err);
    assert.deepEqual(await scratchLeft(vol), []);
  });

  it('restores more messages than one doveadm call takes (250 > 200 a batch): every one, each once', async () => {
    const lists = path.join(inbox, '.Lists');
    for (const d of ['cur', 'new', 'tmp']) await fsp.mkdir(path.join(lists, d), { recursive: true });
    if (isRoot) for (const d of ['', 'cur', 'new', 'tmp']) await fsp.chown(path.join(lists, d), 5000, 5000);
    const bulk: Buffer[] = [];
    for (let i = 0; i < 250; i++) bulk.push((await deliver(inbox, '.Lists', { subject: `Bulk notice ${1000 + i}`, id: `bulk${1000 + i}`, time: 1_700_300_000 + i })).bytes);
    const r4 = await backup(['run', '--config', sb.configPath], { ...sb.env, MAILCOW_BACKUP_TEST_CLOCK: '2026-12-04T03:00:00Z' });
    assert.equal(r4.code, 0, r4.stderr);
    await fsp.rm(lists, { recursive: true });
    const r = await search(['--search', 'subject "Bulk notice"', '--backup', 'latest', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`250 message\\(s\\) of ${ALICE} match`));
    assert.match(r.stdout, /restored 250 message\(s\) into folder Restored-2026-12-10 of alice@example.com; 0 skipped/);
    const back = path.join(inbox, '.Restored-2026-12-10.Lists');
    const files = (await Promise.all(['cur', 'new'].map(async (d) => (await fsp.readdir(path.join(back, d)).catch(() => [] as string[])).map((n) => path.join(back, d, n))))).flat();
    assert.equal(files.length, 250, 'each message once');
    const got = new Set(await Promise.all(files.map(async (f) => (await fsp.readFile(f)).toString('base64'))));
    assert.ok(bulk.every((b) => got.has(b.toString('base64'))), 'every message byte for byte');
    assert.deepEqual(await scratchLeft(vol), []);
  });
});

describe('single-message restore with mail_crypt on (real doveadm, keys in the crypt volume)', { timeout: 300_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  const doveadm = (args: string[], input?: string) => {
    const r = spawnSync('docker', ['compose', 'exec', '-T', 'dovecot-mailcow', 'doveadm', ...args], { cwd: sb.mailcow.path, env: { ...process.env, ...sb.env }, encoding: 'utf8', input });
    assert.equal(r.status, 0, `doveadm ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'message-restore-crypt-'));
    sb = await createSandbox({ dir, mailBytes: 256 * 1024, seed: 12, dovecot: { mailCrypt: true } });
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('finds an encrypted message by subject and restores it, still encrypted and readable', async () => {
    const original = `From: Bob <bob@vendor.example>\nTo: Alice <${ALICE}>\nSubject: Sealed contract 31337\nMessage-ID: <sealed31337@vendor.example>\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n\nThe signed contract, as agreed.\n`;
    doveadm(['save', '-u', ALICE, '-m', 'INBOX'], original); // delivered through dovecot: mail_crypt encrypts it
    const inbox = path.join(sb.mailcow.volume('vmail'), 'example.com/alice/Maildir');
    const sealed = async (folder: string) => {
      const out: string[] = [];
      for (const sub of ['cur', 'new']) for (const n of await fsp.readdir(path.join(inbox, folder, sub)).catch(() => [] as string[])) {
        const head = (await fsp.readFile(path.join(inbox, folder, sub, n))).subarray(0, 7).toString();
        if (head === 'CRYPTED') out.push(n);
      }
      return out;
    };
    assert.equal((await sealed('')).length, 1, 'the stand-in dovecot stores the message encrypted');
    const r1 = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r1.code, 0, r1.stderr);
    doveadm(['expunge', '-u', ALICE, 'mailbox', 'INBOX', 'subject', 'Sealed contract 31337']);
    assert.equal((await sealed('')).length, 0);
    const r = await runCli(RESTORE_CLI, ['--config', sb.configPath, '--mailbox', ALICE, '--search', 'subject "sealed contract"', '--yes'], { ...sb.env, MAILCOW_BACKUP_TEST_CLOCK: '2026-12-10T12:00:00Z' }, 180_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /INBOX .*Sealed contract 31337/);
    assert.match(r.stdout, /restored 1 message\(s\) into folder Restored-2026-12-10/);
    assert.equal((await sealed('.Restored-2026-12-10.INBOX')).length, 1, 'restored mail is encrypted at rest like all mail');
    const text = JSON.parse(doveadm(['-f', 'json', 'fetch', '-u', ALICE, 'text', 'mailbox', 'Restored-2026-12-10/INBOX', 'all'])) as { text: string }[];
    assert.equal(text.length, 1);
    assert.equal(text[0]!.text.replace(/\r\n/g, '\n'), original);
    assert.deepEqual(await scratchLeft(sb.mailcow.volume('vmail')), []);
  });
});
