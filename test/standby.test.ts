// The standby role on the sandbox: a primary backs up to the loopback Storage Box (real sshd with
// the box's shell, real rsync) on day 1, 2, 3…; a standby host (its own state, STANDBY_DIR and
// config with ROLE=standby) runs `restore-from-hetzner standby` as its timer would. The "days" are
// backups a few seconds apart (mailcow's script names them by the system clock).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { createExec } from '../src/adapters/exec.js';
import { encryptFile, loadIdentities } from '../src/adapters/age.js';
import { NOT_PROVED, testArchives } from '../src/standby/verify-copy.js';
import { BACKUP_CLI, publishedOnBox, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';
import { startMailSink, startPingServer } from './support/listeners.js';
import { simpleParser } from 'mailparser';
import net, { type AddressInfo } from 'node:net';


interface StandbyHost {
  config: string;
  dir: string;
  statusFile: string;
}

/** A standby host's config: the primary's box settings, its own state, log and mirror folder. */
async function standbyHost(sb: Sandbox, root: string, name: string, extra: Record<string, string> = {}): Promise<StandbyHost> {
  const base = path.join(root, name);
  const values: Record<string, string> = {
    ROLE: 'standby',
    STATE_DIR: path.join(base, 'state'),
    STATUS_FILE: path.join(base, 'state', 'status.json'),
    LOG_FILE: path.join(base, 'log', 'standby.log'),
    TEMP_BACKUP_DIR: path.join(base, 'tmp'),
    STANDBY_DIR: path.join(base, 'mirror'),
    STANDBY_KEEP: '2',
    ...extra,
  };
  const text = (await fsp.readFile(sb.configPath, 'utf8'))
    .split('\n')
    .filter((l) => !Object.keys(values).some((k) => l.startsWith(`${k}=`)))
    .concat(Object.entries(values).map(([k, v]) => `${k}=${v}`))
    .join('\n');
  const config = path.join(root, `${name}.env`);
  await fsp.writeFile(config, text + '\n', { mode: 0o600 });
  return { config, dir: values.STANDBY_DIR!, statusFile: values.STATUS_FILE! };
}

async function copies(h: StandbyHost): Promise<string[]> {
  return (await fsp.readdir(h.dir).catch(() => [] as string[])).sort();
}

async function mirrorStatus(h: StandbyHost): Promise<{ result: string; mirror: { name?: string; bytesFromBox?: number; lagHours?: number; decryption?: string; verifiedAt?: string } }> {
  return JSON.parse(await fsp.readFile(h.statusFile, 'utf8'));
}

/** Bytes of the regular files under root. */
async function bytesOf(root: string): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(root, { recursive: true, withFileTypes: true })) if (e.isFile()) n += (await fsp.stat(path.join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  return n;
}

/** Checks a condition of the file system every 50 ms until it holds (a download has no other signal to wait on). */
async function until(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('restore-from-hetzner standby on the sandbox', { timeout: 600_000 }, () => {
  let root: string;
  let sb: Sandbox;
  let host: StandbyHost;
  let boxBackups: string;
  const names: string[] = [];

  const backupOn = async () => {
    const r = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const now = await publishedOnBox(sb.box.root, sb.remotePath);
    names.push(now[now.length - 1]!);
    return now[now.length - 1]!;
  };
  const standby = (h: StandbyHost) => runCli(RESTORE_CLI, ['standby', '--config', h.config], sb.env);

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'standby-test-'));
    sb = await createSandbox({ dir: path.join(root, 'primary'), mailBytes: 8 * 1024 * 1024, seed: 21, strict: true });
    host = await standbyHost(sb, root, 'standby', { PROMETHEUS_TEXTFILE: path.join(root, 'standby', 'prom', 'standby.prom') });
    boxBackups = path.join(sb.box.root, sb.remotePath);
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(root, { recursive: true, force: true, maxRetries: 5 });
  });

  it('mirrors day 1, then day 2 sending only the change: unchanged files are the same inode as in the day-1 copy, STANDBY_KEEP=2 holds', async () => {
    const d1 = await backupOn();
    const r1 = await standby(host);
    assert.equal(r1.code, 0, r1.stderr.slice(-3000));
    assert.deepEqual(await copies(host), [d1]);
    assert.deepEqual(await treeHashes(path.join(host.dir, d1)), await treeHashes(path.join(boxBackups, d1)), 'the day-1 copy is the backup on the box, byte for byte');
    const full = await bytesOf(path.join(boxBackups, d1));
    const s1 = await mirrorStatus(host);
    assert.equal(s1.result, 'ok');
    assert.equal(s1.mirror.name, d1);
    assert.ok(s1.mirror.bytesFromBox! >= full * 0.9, `day 1 fetched ${s1.mirror.bytesFromBox} B of ${full} B`);
    assert.equal(s1.mirror.decryption, 'not encrypted');

    const change = await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 22, newFraction: 0.02, deleteFraction: 0.005, renameFraction: 0.005 });
    const d2 = await backupOn();
    const r2 = await standby(host);
    assert.equal(r2.code, 0, r2.stderr.slice(-3000));
    assert.deepEqual(await copies(host), [d1, d2]);
    assert.deepEqual(await treeHashes(path.join(host.dir, d2)), await treeHashes(path.join(boxBackups, d2)));
    const s2 = await mirrorStatus(host);
    // The new mail, the re-dumped archives (they delta against yesterday's) and rsync's file list.
    assert.ok(s2.mirror.bytesFromBox! < full * 0.15, `day 2 fetched ${s2.mirror.bytesFromBox} B; the backup is ${full} B, the new mail ${change.newBytes} B`);
    assert.ok(s2.mirror.bytesFromBox! >= change.newBytes, 'the new mail itself travelled');
    // Every file the box holds as one file in both backups is one file in both copies here.
    let shared = 0;
    let linked = 0;
    for (const p of (await treeHashes(path.join(boxBackups, d2))).keys()) {
      const [a, b] = await Promise.all([fsp.stat(path.join(boxBackups, d1, p)).catch(() => undefined), fsp.stat(path.join(boxBackups, d2, p))]);
      if (!a || a.ino !== b.ino) continue;
      shared++;
      const [x, y] = await Promise.all([fsp.stat(path.join(host.dir, d1, p)), fsp.stat(path.join(host.dir, d2, p))]);
      if (x.ino === y.ino) linked++;
    }
    assert.ok(shared > 50, `${shared} unchanged files`);
    assert.equal(linked, shared, 'every unchanged file is a hard link to the day-1 copy');

    const d3 = await backupOn();
    // Before the standby's next run the box has a newer backup than the mirror: status says by how much.
    const st = await runCli(RESTORE_CLI, ['status', '--config', host.config], sb.env);
    assert.match(st.stdout, new RegExp(`^mirror +${d2}, verified `, 'm'), st.stdout + st.stderr);
    assert.match(st.stdout, new RegExp(`^lag +\\d+ (s|min) behind the newest backup on the box, ${d3}$`, 'm'), st.stdout);
    const r3 = await standby(host);
    assert.equal(r3.code, 0, r3.stderr.slice(-3000));
    assert.deepEqual(await copies(host), [d2, d3], 'STANDBY_KEEP=2: the day-1 copy is removed');
    const st3 = await runCli(BACKUP_CLI, ['status', '--config', host.config], sb.env);
    assert.equal(st3.code, 0, st3.stdout + st3.stderr);
    assert.match(st3.stdout, new RegExp(`^mirror +${d3}, verified .*; not encrypted$`, 'm'), st3.stdout);
    assert.match(st3.stdout, /^lag +0 \(the mirror holds the newest backup on the box\)$/m);
    const prom = await fsp.readFile(path.join(root, 'standby', 'prom', 'standby.prom'), 'utf8');
    assert.match(prom, /^mailcow_backup_standby_lag_seconds 0$/m);
    assert.match(prom, /^mailcow_backup_last_run_success 1$/m);
    // A run with nothing new fetches nothing and keeps the copies.
    const again = await standby(host);
    assert.equal(again.code, 0, again.stderr.slice(-2000));
    assert.equal((await mirrorStatus(host)).mirror.bytesFromBox, 0);
    assert.deepEqual(await copies(host), [d2, d3]);
  });

  it('a tampered file in the previous copy is detected, never used, and fetched again from the box', async () => {
    const [prev] = (await copies(host)).slice(-1);
    const victim = [...(await treeHashes(path.join(host.dir, prev!))).keys()].find((p) => p.startsWith('vmail/') && p.includes('/cur/'))!;
    const file = path.join(host.dir, prev!, victim);
    const st = await fsp.stat(file);
    // Changed in place, size and time kept: rsync's quick check would take it as unchanged.
    const fh = await fsp.open(file, 'r+');
    await fh.write(Buffer.from('X'), 0, 1, Math.floor(st.size / 2));
    await fh.close();
    await fsp.utimes(file, st.atime, st.mtime);

    const d4 = await backupOn();
    const r = await standby(host);
    assert.equal(r.code, 0, r.stdout + r.stderr.slice(-3000));
    assert.match(r.stderr, new RegExp(`${victim.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: SHA-256 .* in the copy on this host: not used; fetched again from the Storage Box`));
    assert.match(r.stderr, new RegExp(`${prev} held a file that no longer matches its manifest \\(changed on this host\\): that copy is removed`));
    assert.deepEqual(await treeHashes(path.join(host.dir, d4)), await treeHashes(path.join(boxBackups, d4)), 'the new copy holds the box\'s bytes');
    assert.ok(!(await copies(host)).includes(prev!), 'the tampered copy is no longer offered as a verified copy');
  });

  it('a mirror run killed with SIGKILL mid-download and run again ends complete and verified', async () => {
    const fresh = await standbyHost(sb, root, 'killed');
    const newest = names[names.length - 1]!;
    const full = await bytesOf(path.join(boxBackups, newest));
    await sb.box.setMode({ sendKBps: 1024 });
    const p = spawn(process.execPath, [RESTORE_CLI, 'standby', '--config', fresh.config], { env: { ...process.env, ...sb.env }, stdio: 'ignore', detached: true });
    const exited = new Promise<NodeJS.Signals | null>((r) => p.on('exit', (_c, s) => r(s)));
    const incoming = path.join(fresh.dir, `.incoming-${newest}`);
    await until('a third of the backup on the standby', async () => existsSync(incoming) && (await bytesOf(incoming).catch(() => 0)) > full / 3);
    // As systemd kills a unit: the whole process group, rsync and ssh included.
    process.kill(-p.pid!, 'SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    await sb.box.setMode({ sendKBps: undefined });
    assert.deepEqual(await copies(fresh), [`.incoming-${newest}`], 'nothing half-copied carries a backup name');

    const r = await standby(fresh);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.deepEqual(await copies(fresh), [newest]);
    assert.deepEqual(await treeHashes(path.join(fresh.dir, newest)), await treeHashes(path.join(boxBackups, newest)));
    const s = await mirrorStatus(fresh);
    assert.equal(s.result, 'ok');
    assert.ok(s.mirror.bytesFromBox! < full * 0.8, `the rerun resumed: ${s.mirror.bytesFromBox} B of ${full} B fetched`);
  });

  it('ROLE=standby refuses to back up: exit 2, one line, nothing written to the box', async () => {
    const before = await publishedOnBox(sb.box.root, sb.remotePath);
    const r = await runCli(BACKUP_CLI, ['run', '--config', host.config], sb.env);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^error: this host is a standby \(ROLE=standby in .*\): it does not back up, so it never writes into the primary's backups; it mirrors them with 'restore-from-hetzner standby'/);
    assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
    const entries = (await fsp.readdir(boxBackups)).filter((n) => n.startsWith('.incomplete-'));
    assert.deepEqual(entries, []);
    // And the other way round: the primary does not mirror (its backup's status file would be overwritten).
    const primaryStatus = await fsp.readFile(path.join(sb.dir, 'state', 'status.json'), 'utf8');
    const m = await runCli(RESTORE_CLI, ['standby', '--config', sb.configPath], sb.env);
    assert.equal(m.code, 2, m.stderr);
    assert.match(m.stderr, /^error: this host is not a standby \(ROLE=primary in .*\); 'restore-from-hetzner standby' runs on a second host whose config says ROLE=standby/);
    assert.equal(await fsp.readFile(path.join(sb.dir, 'state', 'status.json'), 'utf8'), primaryStatus);
  });

  it('a backup pruned on the box mid-mirror is a clear failure (exit 1), and nothing half-copied carries its name', async () => {
    const fresh = await standbyHost(sb, root, 'pruned');
    const newest = names[names.length - 1]!;
    await sb.box.setMode({ sendKBps: 1024 });
    const run = runCli(RESTORE_CLI, ['standby', '--config', fresh.config], sb.env);
    const incoming = path.join(fresh.dir, `.incoming-${newest}`);
    await until('the mirror under way', async () => existsSync(incoming) && (await bytesOf(incoming).catch(() => 0)) > 1024 * 1024);
    // As the primary's retention does: the folder goes away on the box.
    await fsp.rm(path.join(boxBackups, newest), { recursive: true, force: true });
    const r = await run;
    await sb.box.setMode({ sendKBps: undefined });
    assert.equal(r.code, 1, r.stderr.slice(-3000));
    assert.match(r.stderr, new RegExp(`error: ${newest} was removed from the Storage Box while it was being mirrored`));
    assert.deepEqual(await copies(fresh), [], 'no copy, no leftover named after the pruned backup');
    const s = await mirrorStatus(fresh);
    assert.equal(s.result, 'failed');
  });
});

describe("a standby run reports through the backup's channels, end to end", { timeout: 300_000 }, () => {
  let root: string;
  let sb: Sandbox;
  const mails: string[] = [];
  const pings: { path: string; body: string }[] = [];
  let smtp: Awaited<ReturnType<typeof startMailSink>>;
  let hc: Awaited<ReturnType<typeof startPingServer>>;
  let notify: Record<string, string>;

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'standby-notify-'));
    smtp = await startMailSink(mails);
    hc = await startPingServer(pings);
    sb = await createSandbox({ dir: path.join(root, 'primary'), mailBytes: 512 * 1024, seed: 23 });
    notify = {
      EMAIL_NOTIFICATIONS: 'yes',
      NOTIFICATION_EMAIL: 'admin@example.test',
      NOTIFICATION_FROM: 'standby@example.test',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
      HEALTHCHECK_URL: `http://127.0.0.1:${(hc.address() as AddressInfo).port}/ping/standby-uuid`,
    };
    const b = await runCli(BACKUP_CLI, ['run', '--config', sb.configPath], sb.env);
    assert.equal(b.code, 0, b.stderr.slice(-2000));
  });
  after(async () => {
    await sb?.stop();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    await new Promise<void>((resolve) => hc.close(() => resolve()));
    await fsp.rm(root, { recursive: true, force: true, maxRetries: 5 });
  });

  /** The secrets of the standby host's mailcow.conf (the mirrored backup's copy holds the same). */
  const secrets = () => ['DBPASS', 'DBROOT', 'REDISPASS'].map((k) => sb.mailcow.conf[k]!).filter((v) => v && v.length >= 8);
  const assertNoSecret = (text: string, where: string) => {
    for (const s of secrets()) assert.ok(!text.includes(s), `${where} holds a secret of mailcow.conf`);
  };
  const received = async (n: number) => {
    assert.equal(mails.length, n, `${n} e-mail(s) received, got ${mails.length}`);
    return simpleParser(mails[n - 1]!);
  };

  it('a mirror run that succeeds: the OK e-mail reaches the SMTP server, /start then the success ping reach the monitor', async () => {
    const h = await standbyHost(sb, root, 'notified', notify);
    const [name] = await publishedOnBox(sb.box.root, sb.remotePath);
    mails.length = 0;
    pings.length = 0;
    const r = await runCli(RESTORE_CLI, ['standby', '--config', h.config], sb.env);
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    const mail = await received(1);
    assert.equal(mail.subject, `[mailcow-backup] STANDBY OK ${os.hostname()} — ${name}`);
    assert.deepEqual(mail.to && !Array.isArray(mail.to) ? mail.to.value.map((a) => a.address) : [], ['admin@example.test']);
    assert.match(mail.text ?? '', new RegExp(`^standby: ${name} mirrored and verified on `, 'm'));
    assert.match(mail.text ?? '', /^lag +0 \(the mirror holds the newest backup on the box\)$/m);
    assert.match(mail.text ?? '', /^verified +\d+ files against the manifest$/m);
    assertNoSecret(mails[0]!, 'the OK e-mail');
    assert.deepEqual(pings.map((p) => p.path), ['/ping/standby-uuid/start', '/ping/standby-uuid']);
    assert.equal(pings[1]!.body, `standby: ${name} mirrored and verified on ${os.hostname()}`);
  });

  it('a mirror run whose box went away: the FAILED e-mail and the /fail ping with the reason, exit 4, no secret in either', async () => {
    // A loopback port nobody listens on: the box's host is down.
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const h = await standbyHost(sb, root, 'box-gone', { ...notify, HETZNER_PORT: String(closed) });
    mails.length = 0;
    pings.length = 0;
    const r = await runCli(RESTORE_CLI, ['standby', '--config', h.config], sb.env);
    assert.equal(r.code, 4, r.stderr.slice(-3000));
    const mail = await received(1);
    assert.match(mail.subject ?? '', new RegExp(`^\\[mailcow-backup\\] STANDBY FAILED ${os.hostname()} — `));
    assert.match(mail.text ?? '', /^standby: mirror run FAILED in .+ \(exit 4\); the mirror holds no complete copy$/m);
    assertNoSecret(mails[0]!, 'the FAILED e-mail');
    assert.deepEqual(pings.map((p) => p.path), ['/ping/standby-uuid/start', '/ping/standby-uuid/fail']);
    assert.match(pings[1]!.body, /^standby: mirror run FAILED in /);
    assert.ok(pings[1]!.body.includes(`127.0.0.1`) || /connect|refused|reach/i.test(pings[1]!.body), `the /fail ping says why: ${pings[1]!.body.slice(0, 500)}`);
    assertNoSecret(pings[1]!.body, 'the /fail ping');
    assert.equal(JSON.parse(await fsp.readFile(h.statusFile, 'utf8')).result, 'failed');
  });
});

describe('a standby proves encrypted archives decrypt, through a pipe', () => {
  it('tests them with zstd -t after decrypting with AGE_IDENTITY_FILE; says "decryption not proved" without one; a wrong key or damaged ciphertext fails', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'standby-age-'));
    try {
      const { generateIdentity, identityToRecipient } = await import('age-encryption');
      const [mine, other] = [await generateIdentity(), await generateIdentity()];
      await fsp.writeFile(path.join(dir, 'mine.key'), `${mine}\n`, { mode: 0o600 });
      await fsp.writeFile(path.join(dir, 'other.key'), `${other}\n`, { mode: 0o600 });
      await fsp.writeFile(path.join(dir, 'dump'), (await fsp.readFile(process.execPath)).subarray(0, 400_000));
      execFileSync('zstd', ['-q', '-f', path.join(dir, 'dump'), '-o', path.join(dir, 'plain.zst')]);
      await encryptFile(path.join(dir, 'plain.zst'), path.join(dir, 'backup_redis.tar.zst.age'), [await identityToRecipient(mine)]);
      const exec = createExec();
      const files = ['backup_redis.tar.zst.age'];
      assert.deepEqual(await testArchives(exec, dir, files, await loadIdentities(path.join(dir, 'mine.key'))), { archives: 1, decryption: 'proved' });
      assert.deepEqual(await testArchives(exec, dir, files, undefined), { archives: 0, decryption: 'not proved' });
      assert.equal(NOT_PROVED, 'decryption not proved: no AGE_IDENTITY_FILE on this host');
      assert.deepEqual((await fsp.readdir(dir)).sort(), ['backup_redis.tar.zst.age', 'dump', 'mine.key', 'other.key', 'plain.zst'], 'no plaintext written');
      await assert.rejects(testArchives(exec, dir, files, await loadIdentities(path.join(dir, 'other.key'))), (e: Error & { kind?: string }) => e.kind === 'preflight' && /^AGE_IDENTITY_FILE .*other\.key cannot decrypt backup_redis\.tar\.zst\.age: it is not one of the keys this backup was encrypted to/.test(e.message));
      const fh = await fsp.open(path.join(dir, 'backup_redis.tar.zst.age'), 'r+');
      await fh.write(Buffer.from('XXXX'), 0, 4, 200_000);
      await fh.close();
      await assert.rejects(testArchives(exec, dir, files, await loadIdentities(path.join(dir, 'mine.key'))), (e: Error & { kind?: string }) => e.kind === 'verify' && /testing backup_redis\.tar\.zst\.age \(decrypted through a pipe\) failed/.test(e.message));
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
