// A restore and the backup timer on one host: the restore holds the backup lock while it changes
// the host (a backup must not publish a half-restored mailcow), waits for a running backup run
// instead of failing, and a restore's lock is never taken over for its age.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { EXIT } from '../src/cli/exit-codes.js';
import { backup, ROOT, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';
import { docker, dumpContainer, startDumpContainer } from './support/docker.js';

let sb: Sandbox;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-restore-lock-'));
  sb = await createSandbox({ dir, mailBytes: 256 * 1024, seed: 61 });
  const r = await backup(['run', '--config', sb.configPath], sb.env);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await sb?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

/** Another process holding the tool's lock as `what`, until its stdin closes. */
async function holdLock(what: string, name: 'backup' | 'standby' = 'backup'): Promise<{ p: ChildProcess; release: () => Promise<void> }> {
  const script = `
    const { acquireLock } = await import(${JSON.stringify(join(ROOT, 'dist/src/adapters/lock.js'))});
    const lock = await acquireLock(${JSON.stringify(join(dir, 'state'))}, 6, { warn() {}, info() {} }, () => new Date(), ${JSON.stringify(what)}, ${JSON.stringify(name)});
    process.stdout.write('held\\n');
    process.stdin.on('end', async () => { await lock.release(); process.exit(0); });
    process.stdin.resume();`;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => String(d).includes('held') && resolve());
    p.on('exit', (c) => reject(new Error(`lock holder exited ${c}`)));
  });
  return { p, release: () => new Promise((resolve) => (p.on('exit', () => resolve()), p.stdin!.end())) };
}

test('a restore waits for a running backup run before it changes anything, then restores', { timeout: 120_000 }, async () => {
  const atBackup = await treeHashes(sb.mailcow.volume('postfix'));
  await writeFile(join(sb.mailcow.volume('postfix'), 'main.cf.local'), 'changed after the backup');
  const damaged = await treeHashes(sb.mailcow.volume('postfix'));
  const holder = await holdLock('backup run');
  const p = spawn(process.execPath, [RESTORE_CLI, '--backup', 'latest', '--components', 'postfix', '--yes', '--config', sb.configPath], { env: { ...process.env, ...sb.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiting = new Promise<void>((resolve) => {
    const on = (d: Buffer) => ((out += d), /waiting until another backup run \(process \d+\) has finished: nothing on this host is changed before that/.test(out) && resolve());
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
  });
  const exit = new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
  await Promise.race([waiting, exit.then(() => assert.fail(`the restore did not wait:\n${out}`))]);
  assert.deepEqual(await treeHashes(sb.mailcow.volume('postfix')), damaged, 'nothing restored while the backup run holds the lock');
  await holder.release();
  assert.equal(await exit, 0, out);
  assert.deepEqual(await treeHashes(sb.mailcow.volume('postfix')), atBackup, 'restored once the backup run was done');
});

test("a backup run finds a restore's lock busy (exit 75), also when the restore is older than LOCK_TIMEOUT_HOURS", { timeout: 120_000 }, async () => {
  const holder = await holdLock('restore');
  try {
    const now = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(now.code, 75, now.stderr);
    assert.match(now.stderr, /a restore holds the lock .*backup\.lock \(process \d+/);
    // Seven hours later (LOCK_TIMEOUT_HOURS=6): a backup run's lock would be taken over; a restore's is not.
    const later = await runCli(join(ROOT, 'dist/src/cli/backup-to-hetzner.js'), ['run', '--config', sb.configPath], { ...sb.env, MAILCOW_BACKUP_TEST_CLOCK: new Date(Date.now() + 7 * 3_600_000).toISOString() });
    assert.equal(later.code, 75, later.stderr);
    assert.match(later.stderr, /a restore holds the lock/);
  } finally {
    await holder.release();
  }
});

test("someone else's mailcow-backup container: the restore stops before it changes anything (exit 7), and leaves it alone", { timeout: 120_000 }, async () => {
  await writeFile(join(sb.mailcow.volume('postfix'), 'main.cf.local'), 'changed again');
  const damaged = await treeHashes(sb.mailcow.volume('postfix'));
  const manual = join(dir, 'manual');
  await mkdir(manual, { recursive: true });
  const cli = await startDumpContainer(sb.mailcow.path, manual);
  try {
    const before = dumpContainer(sb.mailcow.path);
    const earlier = (await sb.mailcow.readActions()).length;
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'postfix', '--yes', '--config', sb.configPath], sb.env);
    assert.equal(r.code, EXIT.dumpBusy, r.stdout + r.stderr);
    assert.match(r.stderr, /^error: a docker container named mailcow-backup already exists .* no run of this tool left it: .*nothing was restored\. .*remove it: docker rm -f mailcow-backup$/m);
    assert.deepEqual(await treeHashes(sb.mailcow.volume('postfix')), damaged, 'nothing was restored');
    assert.equal(dumpContainer(sb.mailcow.path), before, 'the container was left alone');
    assert.deepEqual((await sb.mailcow.readActions()).slice(earlier).filter((a) => /stop/.test(a) && /postfix/.test(a)), [], 'postfix was never stopped');
  } finally {
    docker(sb.mailcow.path, ['rm', '-f', 'mailcow-backup']);
    cli.kill('SIGKILL');
  }
});

test('on a standby host a failover restore waits for a running mirror run, then restores', { timeout: 120_000 }, async () => {
  const atBackup = await treeHashes(sb.mailcow.volume('rspamd'));
  await writeFile(join(sb.mailcow.volume('rspamd'), 'stats.ucl'), 'changed on the standby');
  const config = join(dir, 'standby.env');
  await writeFile(config, (await readFile(sb.configPath, 'utf8')) + '\nROLE=standby\n', { mode: 0o600 });
  const holder = await holdLock('standby mirror run', 'standby');
  const p = spawn(process.execPath, [RESTORE_CLI, '--backup', 'latest', '--components', 'rspamd', '--yes', '--config', config], { env: { ...process.env, ...sb.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiting = new Promise<void>((resolve) => {
    const on = (d: Buffer) => ((out += d), /waiting until a standby mirror run \(process \d+\) has finished/.test(out) && resolve());
    p.stdout!.on('data', on);
    p.stderr!.on('data', on);
  });
  const exit = new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
  await Promise.race([waiting, exit.then(() => assert.fail(`the restore did not wait for the mirror run:\n${out}`))]);
  await holder.release();
  assert.equal(await exit, 0, out);
  assert.deepEqual(await treeHashes(sb.mailcow.volume('rspamd')), atBackup, 'restored once the mirror run was done');
});
