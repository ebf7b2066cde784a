// The README's first command: the sandbox demo backs up twice, loses a mailbox, restores it
// unattended and shows its hashes; with --keep it stays up and the commands it prints work.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishedOnBox, removeSandbox, ROOT, treeHashes } from './support/cli.js';

const DEMO = join(ROOT, 'dist/scripts/sandbox-demo.js');

/** Resolves with everything printed once `re` matches; rejects when the demo exits first. */
function until(p: ChildProcess, out: { text: string }, re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`demo did not print ${re} within ${ms} ms:\n${out.text.slice(-3000)}`)), ms);
    const check = () => {
      if (!re.test(out.text)) return;
      clearTimeout(t);
      p.stdout!.off('data', check);
      resolve(out.text);
    };
    p.stdout!.on('data', check);
    p.once('exit', (code) => {
      clearTimeout(t);
      if (!re.test(out.text)) reject(new Error(`demo exited ${code} before printing ${re}:\n${out.text.slice(-3000)}`));
    });
    check();
  });
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

const shell = (line: string) =>
  new Promise<{ code: number; out: string }>((resolve) => {
    const p = spawn('bash', ['-c', line], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => resolve({ code: code ?? 1, out }));
  });

describe('the sandbox demo', { timeout: 300_000 }, () => {
  let dir: string | undefined;
  let demo: ChildProcess | undefined;
  after(async () => {
    if (demo && demo.exitCode === null) demo.kill('SIGKILL');
    await removeSandbox(undefined, dir);
  });

  it('restores a lost mailbox with the mail it had, then stays up with --keep for the wizard', async () => {
    dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
    const sandbox = join(dir, 'sandbox');
    // A clean environment: the demo must not depend on anything the test runner set.
    demo = spawn(process.execPath, [DEMO, '--keep'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? dir, SANDBOX_DIR: sandbox, SANDBOX_MAIL_MIB: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { text: '' };
    demo.stdout!.on('data', (d) => (out.text += d));
    demo.stderr!.on('data', (d) => (out.text += d));
    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    const text = await until(demo, out, /to stop it: press Ctrl-C here/, 240_000);

    assert.match(text, /\$ restore-from-hetzner --backup latest --mailbox alice@example\.com/);
    // The demo's claim, checked independently: the mailbox now holds exactly what the newest backup on the box holds.
    const names = await publishedOnBox(join(sandbox, 'box', 'home'), 'backups/mailcow');
    assert.equal(names.length, 2, names.join(','));
    const onBox = await treeHashes(join(sandbox, 'box/home/backups/mailcow', names[1]!, 'vmail/example.com/alice'));
    const live = await treeHashes(join(sandbox, 'mailcow/volumes/vmail-vol-1/example.com/alice'));
    assert.ok(onBox.size > 0);
    assert.deepEqual([...live].sort(), [...onBox].sort());
    const digests = [...text.matchAll(/alice@example\.com (?:as the second backup holds it|after the restore):\s+(\d+) files, tree SHA-256 ([0-9a-f]{64})/g)].map((m) => `${m[1]} ${m[2]}`);
    assert.equal(digests.length, 2, text);
    assert.equal(digests[0], digests[1]);
    assert.equal(Number(digests[0]!.split(' ')[0]), onBox.size);

    // The printed commands, pasted as they are, reach the kept sandbox.
    const lines = text.split('\n').map((l) => l.trim());
    const wizard = lines.find((l) => /restore-from-hetzner\.js'? --config/.test(l));
    const list = lines.find((l) => /backup-to-hetzner\.js'? list --config/.test(l));
    assert.ok(wizard && list, text);
    const listed = await shell(`${wizard} --list`);
    assert.equal(listed.code, 0, listed.out);
    for (const n of names) assert.match(listed.out, new RegExp(n));
    assert.equal((await shell(list)).code, 0);
    const port = Number(/Storage Box on 127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
    assert.ok(await portOpen(port), 'the box is up while the demo waits');

    demo.kill('SIGINT');
    assert.equal(await exited, 0, out.text.slice(-2000));
    assert.equal(await portOpen(port), false, 'Ctrl-C stops the box');
  });
});
