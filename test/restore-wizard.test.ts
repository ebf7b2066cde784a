// The wizard in a real pseudo-terminal (tmux): arrow keys, space, the typed confirmation.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { treeHashes } from './support/cli.js';

const root = path.resolve(fileURLToPath(new URL('../../', import.meta.url)));
const BACKUP_CLI = path.join(root, 'dist/src/cli/backup-to-hetzner.js');
const RESTORE_CLI = path.join(root, 'dist/src/cli/restore-from-hetzner.js');


const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });

describe('restore wizard in a pseudo-terminal', { timeout: 120_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  const session = `restore-wizard-${process.pid}`;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'restore-wizard-'));
    sb = await createSandbox({ dir, mailBytes: 1024 * 1024, seed: 3 });
    await new Promise<void>((res, rej) => {
      const p = spawn(process.execPath, [BACKUP_CLI, 'run', '--config', sb.configPath], { env: { ...process.env, ...sb.env }, stdio: 'ignore' });
      p.on('close', (c) => (c === 0 ? res() : rej(new Error(`backup exit ${c}`))));
    });
  });
  after(async () => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      /* already gone */
    }
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function waitFor(re: RegExp, ms = 30_000): Promise<string> {
    const end = Date.now() + ms;
    let screen = '';
    while (Date.now() < end) {
      screen = tmux('capture-pane', '-p', '-t', session);
      if (re.test(screen)) return screen;
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`timed out waiting for ${re} on the screen:\n${screen}`);
  }

  it('restores chosen components by arrow keys and a typed confirmation', async () => {
    const vm = sb.mailcow.volume('vmail');
    const crypt = sb.mailcow.volume('crypt');
    const vmailThen = await treeHashes(vm);
    const cryptThen = await treeHashes(crypt);
    await mutateMaildir(vm, { seed: 4, newFraction: 0.1, deleteFraction: 0.3, renameFraction: 0.1 });
    await fsp.writeFile(path.join(crypt, 'ecpubkey.pem'), 'not the key');
    const envs = Object.entries({ ...sb.env, STANDIN_PROMPTS: 'tty' }).map(([k, v]) => `${k}=${sh(v)}`).join(' ');
    const cmd = `env ${envs} ${sh(process.execPath)} ${sh(RESTORE_CLI)} --config ${sh(sb.configPath)}; echo "WIZARD-EXIT=$?"; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', cmd);
    await waitFor(/Which backup\?/);
    tmux('send-keys', '-t', session, 'Enter');
    await waitFor(/What should be restored\?/);
    tmux('send-keys', '-t', session, 'Down');
    await waitFor(/❯ chosen components|> chosen components/);
    tmux('send-keys', '-t', session, 'Enter');
    await waitFor(/Components/);
    tmux('send-keys', '-t', session, 'Space'); // vmail
    tmux('send-keys', '-t', session, 'Down');
    tmux('send-keys', '-t', session, 'Space'); // crypt
    await waitFor(/◉ crypt|\(\*\) crypt|◉.*crypt/);
    tmux('send-keys', '-t', session, 'Enter');
    const screen = await waitFor(/Type RESTORE to start/);
    assert.match(screen, /OK\s+crypt keys/);
    assert.match(screen, /vmail\s+stop dovecot/);
    tmux('send-keys', '-t', session, '-l', 'RESTORE');
    tmux('send-keys', '-t', session, 'Enter');
    const done = await waitFor(/WIZARD-EXIT=\d+/, 60_000);
    assert.match(done, /WIZARD-EXIT=0/, done);
    assert.match(done, /restored from mailcow-.*: crypt, vmail/);
    const vmailNow = await treeHashes(vm);
    assert.deepEqual([...vmailNow.entries()].sort(), [...vmailThen.entries()].sort());
    assert.deepEqual([...(await treeHashes(crypt)).entries()].sort(), [...cryptThen.entries()].sort());
  });
});
