// The wizard in a real pseudo-terminal (tmux): arrow keys, space, the typed confirmation.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { backup, publishedOnBox, RESTORE_CLI, treeHashes } from './support/cli.js';
import { bytes } from '../src/plan/human.js';
import { openComponentList, startWizard, type Terminal } from './support/tmux.js';


const treeBytes = async (dir: string) => (await Promise.all([...(await treeHashes(dir)).keys()].map((k) => fsp.stat(path.join(dir, k))))).reduce((n, st) => n + st.size, 0);

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

  it('offers the backup\'s mailboxes to search and pick, marks one this host lost, and brings it back', async () => {
    const vm = sb.mailcow.volume('vmail');
    const [name] = await publishedOnBox(sb.box.root, sb.remotePath);
    const onBox = path.join(sb.box.root, sb.remotePath, name!, 'vmail');
    const messages = async (dir: string) => [...(await treeHashes(path.join(onBox, dir))).keys()].filter((k) => /(^|\/)(cur|new)\/[^/]+$/.test(k)).length;
    const aliceThen = await treeHashes(path.join(onBox, 'example.com/alice'));
    await fsp.rm(path.join(vm, 'example.com/alice'), { recursive: true }); // the lost mailbox
    const t = (term = startWizard(`restore-wizard-mb-${process.pid}`, RESTORE_CLI, ['--config', sb.configPath], { ...sb.env, STANDIN_PROMPTS: 'tty' }));
    await t.waitFor(/Which backup\?/);
    t.keys('Enter');
    await t.waitFor(/What should be restored\?/);
    t.keys('Down', 'Down');
    await t.waitFor(/[❯>] one or more mailboxes/);
    t.keys('Enter');
    let screen = await t.waitFor(/Mailboxes to restore/);
    assert.match(screen, /NOT ON THIS HOST/, screen);
    t.type('example.com');
    // The list once the whole term is typed: narrowed to that domain.
    screen = await t.waitFor(/removes one example\.com\n((?!example\.org)[\s\S])*bob@example\.com((?!example\.org)[\s\S])*navigate/);
    // Every row of the search is a mailbox of the backup with its size and message count.
    const bob = new RegExp(`bob@example\\.com\\s+${bytes(await treeBytes(path.join(onBox, 'example.com/bob')))}\\s+${await messages('example.com/bob')} messages(?!\\s+NOT ON THIS HOST)`);
    assert.match(screen, bob, screen);
    assert.match(screen, new RegExp(`alice@example\\.com\\s+[\\d.]+ (B|KiB|MiB)\\s+${await messages('example.com/alice')} messages\\s+NOT ON THIS HOST`), screen);
    t.keys('C-u');
    t.type('alice@');
    await t.waitFor(/[❯>] \[ \] alice@example\.com/);
    t.keys('Enter');
    await t.waitFor(/chosen: alice@example\.com/);
    t.keys('Enter'); // "done" leads the list once something is chosen
    await t.waitFor(/Replace the mailbox, or merge/);
    t.keys('Down');
    await t.waitFor(/[❯>] replace/);
    t.keys('Enter');
    screen = await t.waitFor(/Type RESTORE to start/);
    assert.match(screen, /alice@example\.com: replace this mailbox/);
    assert.doesNotMatch(screen, /watchdog/, 'a mailbox restore does not touch the watchdog; the plan must not say it does');
    // The disk check counts alice's mail (plus the fixed room for the backup's small files), not the whole backup.
    const aliceBytes = await treeBytes(path.join(onBox, 'example.com/alice'));
    const need = /local disk\s+([\d.]+) MiB needed/.exec(screen);
    assert.ok(need, screen);
    assert.ok(Number(need[1]) <= (16 * 1024 * 1024 + 1.05 * aliceBytes) / 1024 / 1024 + 0.06, `${need[0]} for a mailbox of ${aliceBytes} B`);
    t.type('RESTORE');
    t.keys('Enter');
    const done = await t.waitFor(/WIZARD-EXIT=\d+/, 60_000);
    assert.match(done, /WIZARD-EXIT=0/, done);
    assert.deepEqual([...(await treeHashes(path.join(vm, 'example.com/alice'))).entries()].sort(), [...aliceThen.entries()].sort());
    // rsync's progress line is cleared before the next line: never a log line glued to it.
    const glued = t.history().split('\n').filter((l) => /\d+%/.test(l) && /downloaded|verifying|info /.test(l));
    assert.deepEqual(glued, []);
  });
});
