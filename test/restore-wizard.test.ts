// The wizard in a real pseudo-terminal (tmux): arrow keys, space, the typed confirmation.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { backup, RESTORE_CLI, treeHashes } from './support/cli.js';
import { openComponentList, startWizard, type Terminal } from './support/tmux.js';


describe('restore wizard in a pseudo-terminal', { timeout: 120_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let term: Terminal | undefined;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'restore-wizard-'));
    sb = await createSandbox({ dir, mailBytes: 1024 * 1024, seed: 3 });
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    term?.close();
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('restores chosen components by arrow keys and a typed confirmation', async () => {
    const vm = sb.mailcow.volume('vmail');
    const crypt = sb.mailcow.volume('crypt');
    const vmailThen = await treeHashes(vm);
    const cryptThen = await treeHashes(crypt);
    await mutateMaildir(vm, { seed: 4, newFraction: 0.1, deleteFraction: 0.3, renameFraction: 0.1 });
    await fsp.writeFile(path.join(crypt, 'ecpubkey.pem'), 'not the key');
    const t = (term = startWizard(`restore-wizard-${process.pid}`, RESTORE_CLI, ['--config', sb.configPath], { ...sb.env, STANDIN_PROMPTS: 'tty' }));
    await openComponentList(t);
    t.keys('Space'); // vmail
    t.keys('Down');
    t.keys('Space'); // crypt
    await t.waitFor(/◉ crypt|\(\*\) crypt|◉.*crypt/);
    t.keys('Enter');
    const screen = await t.waitFor(/Type RESTORE to start/);
    assert.match(screen, /OK\s+crypt keys/);
    assert.match(screen, /vmail\s+stop dovecot/);
    t.type('RESTORE');
    t.keys('Enter');
    const done = await t.waitFor(/WIZARD-EXIT=\d+/, 60_000);
    assert.match(done, /WIZARD-EXIT=0/, done);
    assert.match(done, /restored from mailcow-.*: crypt, vmail/);
    const vmailNow = await treeHashes(vm);
    assert.deepEqual([...vmailNow.entries()].sort(), [...vmailThen.entries()].sort());
    assert.deepEqual([...(await treeHashes(crypt)).entries()].sort(), [...cryptThen.entries()].sort());
  });
});
