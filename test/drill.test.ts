// The restore drill end to end on the sandbox, with a real database: the stand-in mailcow's SQL
// volume is a real MariaDB datadir (mailcow's domain/mailbox/alias tables), its backup a real
// mariabackup, and the drill prepares and opens it with Debian's mariabackup and mariadbd, run by
// the fake docker as the mariadb image would. The mail is stored as mail_crypt stores it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { drillNeed } from '../src/plan/drill.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { startMailSink, startPingServer } from './support/listeners.js';
import { backup, publishedOnBox, RESTORE_CLI, runCli, sleep, treeHashes } from './support/cli.js';

const VOLS = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;

/** Resolves once `file` exists: the fake docker registers a running container by writing it. */
async function fileAppears(file: string, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!existsSync(file)) {
    assert.ok(Date.now() - t0 < ms, `${file} did not appear within ${ms} ms`);
    await sleep(50); // polls the state; no fixed wait
  }
}

describe('restore-from-hetzner drill (real MariaDB)', { timeout: 900_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let smtp: SMTPServer;
  let hc: http.Server;
  const mails: string[] = [];
  const pings: { path: string; body: string }[] = [];
  let prom: string;
  let good: string;

  const drill = (args: string[], env: Record<string, string> = {}, config = sb.configPath) => runCli(RESTORE_CLI, ['drill', '--config', config, ...args], { ...sb.env, ...env }, 240_000);
  /** One more backup (a second apart: names have one-second resolution); returns its name. */
  const newBackup = async (env: Record<string, string> = {}, config = sb.configPath, flags: string[] = []) => {
    const before = await publishedOnBox(sb.box.root, sb.remotePath);
    await sleep(1100);
    const r = await backup(['run', '--config', config, ...flags], { ...sb.env, ...env }, 240_000);
    assert.equal(r.code, 0, r.stderr);
    const now = await publishedOnBox(sb.box.root, sb.remotePath);
    return now.find((n) => !before.includes(n))!;
  };
  const liveHashes = async () => Object.fromEntries(await Promise.all(VOLS.map(async (v) => [v, Object.fromEntries(await treeHashes(sb.mailcow.volume(v)))])));
  const leftovers = async () => ({
    containers: (await fsp.readdir(path.join(sb.mailcow.path, '.docker', 'containers')).catch(() => [] as string[])).filter((n) => n.startsWith('mailcow-backup-drill-')),
    scratch: (await fsp.readdir(path.join(dir, 'tmp')).catch(() => [] as string[])).filter((n) => n.startsWith('drill-')),
  });
  const messageCount = async () => {
    let n = 0;
    const walk = async (d: string, msgs: boolean): Promise<void> => {
      for (const e of await fsp.readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(path.join(d, e.name), e.name === 'cur' || e.name === 'new');
        else if (msgs && e.isFile()) n++;
      }
    };
    await walk(sb.mailcow.volume('vmail'), false);
    return n;
  };

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'drill-'));
    smtp = await startMailSink(mails);
    hc = await startPingServer(pings);
    prom = path.join(dir, 'prom', 'mailcow_backup.prom');
    await fsp.mkdir(path.dirname(prom));
    sb = await createSandbox({
      dir,
      mailBytes: 512 * 1024,
      seed: 17,
      mailcow: { realDatabase: true, mailCrypt: true },
      config: {
        PROMETHEUS_TEXTFILE: prom,
        EMAIL_NOTIFICATIONS: 'yes',
        NOTIFICATION_EMAIL: 'admin@example.test',
        NOTIFICATION_FROM: 'backup@example.test',
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
        HEALTHCHECK_URL: `http://127.0.0.1:${(hc.address() as AddressInfo).port}/ping/check-uuid`,
        STANDBY_DIR: path.join(dir, 'standby'),
      },
    });
    good = await newBackup();
  });
  after(async () => {
    await sb?.stop();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    await new Promise<void>((resolve) => hc.close(() => resolve()));
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('a good backup: OK with the database\'s counts, the live volumes untouched, nothing left behind; e-mail, status, metrics, ping', async () => {
    const live = await liveHashes();
    const messages = await messageCount();
    mails.length = 0;
    pings.length = 0;
    const r = await drill(['--backup', good]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // 6 mailboxes in 2 domains, the last one inactive; an alias per mailbox and a postmaster per domain
    assert.match(r.stdout, /OK\s+database\s+prepared and opened with mariadb:10\.11: 2 domains, 6 mailboxes \(5 active, 1 inactive\), 8 aliases/);
    assert.match(r.stdout, /OK\s+mailboxes\s+every one of the 6 mailboxes has its mail folder/);
    assert.match(r.stdout, /OK\s+crypt keys\s+the key pair matches, and \d+ of \d+ sampled messages are encrypted for it/);
    const summary = new RegExp(`^drill OK: ${good} restores: 2 domains, 6 mailboxes, ${messages.toLocaleString('en-US')} messages, [\\d.]+ (KiB|MiB); fetched in .+, opened in .+$`, 'm');
    assert.match(r.stdout, summary);
    assert.deepEqual(await liveHashes(), live, 'the live volumes are byte-identical');
    assert.deepEqual(await leftovers(), { containers: [], scratch: [] });
    assert.equal(mails.length, 1);
    const mail = await simpleParser(mails[0]!);
    assert.equal(mail.subject, `[mailcow-backup] DRILL OK ${os.hostname()} — ${good}`);
    assert.match(mail.text ?? '', /drill OK: mailcow-/);
    const status = JSON.parse(await fsp.readFile(path.join(dir, 'state', 'status.json'), 'utf8'));
    assert.equal(status.lastDrill.result, 'ok');
    assert.equal(status.lastDrill.mailboxes, 6);
    assert.equal(status.lastDrill.backup, good);
    const metrics = await fsp.readFile(prom, 'utf8');
    assert.match(metrics, /^mailcow_backup_last_drill_success_timestamp_seconds \d+/m);
    assert.match(metrics, /^mailcow_backup_last_drill_mailboxes 6$/m);
    assert.match(metrics, new RegExp(`^mailcow_backup_last_drill_messages ${messages}$`, 'm'));
    assert.match(metrics, /^mailcow_backup_last_success_timestamp_seconds /m, 'the backup run\'s metrics stay');
    assert.deepEqual(pings.map((p) => p.path), ['/ping/check-uuid/log'], 'a drill never sends the success ping of the daily backup');
  });

  it('a mailbox in the database whose mail folder is missing: FAIL naming it, exit 6', async () => {
    const folder = path.join(sb.mailcow.volume('vmail'), 'example.org', 'bob');
    const aside = path.join(dir, 'bob-aside');
    await fsp.rename(folder, aside);
    let name: string;
    try {
      name = await newBackup();
    } finally {
      await fsp.rename(aside, folder);
    }
    mails.length = 0;
    const r = await drill(['--backup', name]);
    assert.equal(r.code, 6, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL\s+mailboxes\s+1 mailbox in the database has no mail folder in the backup: bob@example\.org \(vmail\/example\.org\/bob missing\)/);
    assert.match(r.stdout, new RegExp(`^drill FAILED: ${name} is NOT restorable: mailboxes: `, 'm'));
    assert.equal((await simpleParser(mails[0] ?? '')).subject, `[mailcow-backup] DRILL FAILED ${os.hostname()} — ${name}`);
    assert.deepEqual(await leftovers(), { containers: [], scratch: [] });
  });

  it('a database archive that does not prepare (mariabackup --backup failed, the archive was still written): FAIL, exit 6', async () => {
    // The archives are stored unpacked (issue 19): without its datadir the backup is far smaller
    // than the last, which the shrink guard refuses to publish unasked.
    const name = await newBackup({ STANDIN_FAIL_MARIABACKUP: '1' }, sb.configPath, ['--accept-shrink']);
    const r = await drill(['--backup', name]);
    assert.equal(r.code, 6, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL\s+database\s+the database archive does not open: mariabackup --prepare in mailcow-backup-drill-\d+/);
    assert.deepEqual(await leftovers(), { containers: [], scratch: [] });
  });

  it('crypt keys that are not the ones the mail was encrypted with: FAIL, exit 6', async () => {
    const crypt = sb.mailcow.volume('crypt');
    const saved = path.join(dir, 'crypt-aside');
    await fsp.cp(crypt, saved, { recursive: true });
    let name: string;
    try {
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path.join(dir, 'new.key')]);
      execFileSync('openssl', ['pkey', '-in', path.join(dir, 'new.key'), '-out', path.join(crypt, 'ecprivkey.pem')]);
      execFileSync('openssl', ['pkey', '-in', path.join(dir, 'new.key'), '-pubout', '-out', path.join(crypt, 'ecpubkey.pem')]);
      name = await newBackup();
    } finally {
      await fsp.rm(crypt, { recursive: true, force: true });
      await fsp.cp(saved, crypt, { recursive: true });
    }
    const r = await drill(['--backup', name]);
    assert.equal(r.code, 6, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL\s+crypt keys\s+\d+ of \d+ sampled encrypted messages were encrypted for key [0-9a-f]{16}…, but the backup's crypt key is [0-9a-f]{16}…/);
  });

  it('an encrypted backup: WARN "could not prove decryption" without an identity, OK with it', async () => {
    const identity = await generateIdentity();
    const keyFile = path.join(dir, 'drill.agekey');
    await fsp.writeFile(keyFile, `${identity}\n`, { mode: 0o600 });
    const config = path.join(dir, 'encrypted.env');
    await fsp.writeFile(config, (await fsp.readFile(sb.configPath, 'utf8')) + `ENCRYPT_RECIPIENTS=${await identityToRecipient(identity)}\n`, { mode: 0o600 });
    const name = await newBackup({}, config);
    const without = await drill(['--backup', name]);
    assert.equal(without.code, 0, without.stdout + without.stderr);
    assert.match(without.stdout, /WARN\s+encryption\s+could not prove decryption: \d+ files are age-encrypted and no identity was given/);
    assert.doesNotMatch(without.stdout, /OK\s+database/);
    const withKey = await drill(['--backup', name, '--identity', keyFile]);
    assert.equal(withKey.code, 0, withKey.stdout + withKey.stderr);
    assert.match(withKey.stdout, /OK\s+encryption\s+\d+ files decrypted with /);
    assert.match(withKey.stdout, /OK\s+database\s+prepared and opened .* 6 mailboxes/);
    assert.match(withKey.stdout, /OK\s+crypt keys\s+the key pair matches/);
    assert.doesNotMatch(withKey.stdout + withKey.stderr, /AGE-SECRET-KEY/);
  });

  it('too little space for a full drill (a small tmpfs): the database and the 3 smallest mailboxes are checked, the rest named as skipped; --json says the same', { skip: process.getuid?.() !== 0 && 'mounting a tmpfs needs root' }, async () => {
    const record = JSON.parse(await fsp.readFile(path.join(sb.box.root, sb.remotePath, good, 'backup.json'), 'utf8'));
    const need = drillNeed(record.bytes, (record.archives as { component: string; bytes: number; unpackedBytes?: number }[]).find((a) => a.component === 'mysql'));
    const sizes = Object.values(record.vmail.mailboxes as Record<string, { bytes: number }>).map((m) => m.bytes).sort((a, b) => a - b);
    // Room for everything but the three largest mailboxes' mail: less than the estimate of a full drill.
    const room = need - sizes.slice(-3).reduce((a, b) => a + b, 0);
    const small = path.join(dir, 'small-tmp');
    await fsp.mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(room / 4096) * 4096},mode=0700`, 'tmpfs', small]);
    try {
      const config = path.join(dir, 'small.env');
      await fsp.writeFile(config, (await fsp.readFile(sb.configPath, 'utf8')) + `TEMP_BACKUP_DIR=${small}\n`, { mode: 0o600 });
      const r = await drill(['--backup', good, '--json'], {}, config);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.verdict, 'OK');
      assert.equal(out.exitCode, 0);
      const disk = (out.checks as { status: string; title: string; detail: string }[]).find((c) => c.title === 'disk')!;
      assert.equal(disk.status, 'WARN', JSON.stringify(out.checks));
      assert.match(disk.detail, /checked the database, the archives and 3 mailboxes \(.+\); skipped the mail of 3 mailboxes/);
      assert.ok((out.checks as { status: string; title: string }[]).some((c) => c.status === 'OK' && c.title === 'database'), JSON.stringify(out.checks));
      assert.match(out.summary, /^drill OK: /);
      assert.deepEqual((await fsp.readdir(small)).filter((n) => n.startsWith('drill-')), [], 'scratch removed');
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('SIGTERM mid-drill: exit 143, its container and scratch folder gone, the live volumes byte-identical', async () => {
    const live = await liveHashes();
    const p = spawn(process.execPath, [RESTORE_CLI, 'drill', '--config', sb.configPath, '--backup', good], {
      env: { ...process.env, ...sb.env, STANDIN_DOCKER_HOLD: '^mailcow-backup-drill-' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, killed as systemd stops a unit
    });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    const exit = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    // the container registered and running (held by the stand-in, as a stuck database server)
    await fileAppears(path.join(sb.mailcow.path, '.docker', 'containers', `mailcow-backup-drill-${p.pid}`, 'pid'));
    process.kill(-p.pid!, 'SIGTERM');
    const code = await Promise.race([exit, sleep(60_000).then(() => 'still running 60 s after SIGTERM')]);
    if (code !== 143) {
      out += execFileSync('sh', ['-c', `ps -eo pid,ppid,pgid,stat,cmd | grep -v grep | grep -E "drill|docker|sleep|tail"; ls -l /proc/${p.pid}/fd`], { encoding: 'utf8' });
      p.kill('SIGKILL');
    }
    assert.equal(code, 143, out);
    assert.deepEqual(await leftovers(), { containers: [], scratch: [] }, out);
    assert.deepEqual(await liveHashes(), live, 'the live volumes are byte-identical');
  });

  it('a drill killed with SIGKILL leaves its container; the next drill removes it', async () => {
    const p = spawn(process.execPath, [RESTORE_CLI, 'drill', '--config', sb.configPath, '--backup', good], {
      env: { ...process.env, ...sb.env, STANDIN_DOCKER_HOLD: '^mailcow-backup-drill-' },
      stdio: 'ignore',
      detached: true,
    });
    const exit = new Promise<void>((resolve) => p.on('exit', () => resolve()));
    const name = `mailcow-backup-drill-${p.pid}`;
    await fileAppears(path.join(sb.mailcow.path, '.docker', 'containers', name, 'pid'));
    process.kill(-p.pid!, 'SIGKILL');
    await exit;
    assert.deepEqual((await leftovers()).containers, [name], 'docker keeps a killed drill\'s container');
    const r = await drill(['--backup', good]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`removed the docker container ${name} that a killed drill left behind`));
    assert.deepEqual(await leftovers(), { containers: [], scratch: [] });
  });
});
