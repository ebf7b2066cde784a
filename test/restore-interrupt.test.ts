// Ctrl-C during the restore step (step 7): the component being restored finishes, nothing after
// it starts, and the message says exactly what was and was not restored. The signal goes to the
// whole process group, as a terminal sends it, so the children would see it too if they shared it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateDatabases } from '../src/sandbox/mailcow-standin.js';
import { backup, RESTORE_CLI, treeHashes } from './support/cli.js';

const ORDER = ['crypt', 'mysql', 'redis', 'rspamd', 'postfix', 'vmail'] as const;

let sb: Sandbox;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-restore-int-'));
  sb = await createSandbox({ dir, mailBytes: 512 * 1024, seed: 44 });
  const r = await backup(['run', '--config', sb.configPath], sb.env);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await sb?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

test('Ctrl-C while mysql is restored: mysql finishes, nothing later starts, the message says what state the host is in', { timeout: 180_000 }, async () => {
  const atBackup: Record<string, Map<string, string>> = {};
  for (const v of ORDER) atBackup[v] = await treeHashes(sb.mailcow.volume(v));
  // Damage every volume so "restored" and "not restored" can be told apart by content.
  await mutateDatabases(sb.mailcow, 3);
  await writeFile(join(sb.mailcow.volume('crypt'), 'ecprivkey.pem'), 'wrong key');
  await writeFile(join(sb.mailcow.volume('rspamd'), 'stats.ucl'), 'changed');
  await writeFile(join(sb.mailcow.volume('postfix'), 'main.cf.local'), 'changed');
  const damaged: Record<string, Map<string, string>> = {};
  for (const v of ORDER) damaged[v] = await treeHashes(sb.mailcow.volume(v));

  // detached: the CLI leads a process group of its own, which we signal as a terminal would.
  const p = spawn(process.execPath, [RESTORE_CLI, '--backup', 'latest', '--components', 'all', '--yes', '--config', sb.configPath], {
    env: { ...process.env, ...sb.env, STANDIN_PROMPTS: 'tty' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let sent = false;
  const onData = (d: Buffer) => {
    out += d;
    // Once mailcow's script has printed its menu for mysql it surely runs (in its own group).
    if (!sent && /choosing \[ \d+ \] .* for mysql/.test(out)) {
      sent = true;
      process.kill(-p.pid!, 'SIGINT');
    }
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  const code = await new Promise<number | null>((resolve) => p.on('close', (c, sig) => resolve(c ?? (sig ? 128 : null))));
  assert.ok(sent, `the restore never reached mysql:\n${out}`);
  assert.equal(code, 130, out);

  const m = /interrupted during the restore: restored ([^;]*); NOT restored: ([^.]*)\./.exec(out);
  assert.ok(m, out);
  const restored = m[1]!.split(', ');
  const notRestored = m[2]!.split(', ');
  assert.deepEqual(restored, ['crypt', 'mysql'], 'mysql, under way at Ctrl-C, was finished');
  assert.deepEqual(notRestored, ['redis', 'rspamd', 'postfix', 'vmail']);
  assert.match(out, /run the command again with --components redis,rspamd,postfix,vmail/);

  for (const v of restored as (typeof ORDER[number])[]) assert.deepEqual(await treeHashes(sb.mailcow.volume(v)), atBackup[v], `${v} is back to backup time`);
  for (const v of notRestored as (typeof ORDER[number])[]) assert.deepEqual(await treeHashes(sb.mailcow.volume(v)), damaged[v], `${v} was not touched`);
  // What the restore stopped runs again (mailcow's script took the stack down for mysql and its
  // watchdog for each component), as docker shows it: every container up.
  const actions = await sb.mailcow.readActions();
  assert.ok(actions.includes('docker compose down') && actions.includes('docker stop watchdog-mailcow'), actions.join(' | '));
  const ps = execFileSync('docker', ['compose', 'ps', '--all'], { env: { ...process.env, ...sb.env } }).toString().split('\n').slice(1).filter(Boolean);
  assert.equal(ps.length, 6, ps.join('\n'));
  assert.deepEqual(ps.filter((l) => !/ Up /.test(l)), [], 'every mailcow container runs again');
});

test("mailcow's script hangs restoring crypt: it is stopped after its idle time and the message names the containers it left stopped", { timeout: 300_000 }, async () => {
  const env = { ...process.env, ...sb.env, STANDIN_HANG_COMPONENT: 'crypt' };
  try {
    const p = spawn(process.execPath, [RESTORE_CLI, '--backup', 'latest', '--components', 'crypt', '--yes', '--config', sb.configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((resolve) => p.on('close', (c) => resolve(c)));
    assert.equal(code, 1, out);
    assert.match(out, /restoring crypt failed: .*printed nothing for 120 s/, out);
    // mailcow's script stopped its watchdog (and crypt's owner, dovecot) and never got to start them.
    const m = /Containers not running now: ([^(]*) \(`docker compose up -d` in /.exec(out);
    assert.ok(m, out);
    assert.match(m[1]!, /watchdog-mailcow/);
    assert.match(m[1]!, /dovecot-mailcow/);
  } finally {
    // The hung extraction container outlives the script, as under docker: remove it and start the stack.
    execFileSync('docker', ['rm', '-f', 'mailcow-backup'], { env });
    execFileSync('docker', ['compose', 'up', '-d'], { env, cwd: sb.mailcow.path });
  }
});
