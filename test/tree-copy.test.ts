// A run after a published backup starts the new mail tree as a hard-link copy of the newest
// backup's (`cp -al` on the box) and sends only what changed (issue 16: hourly runs; issue 19:
// the file list). The real CLI against the loopback Storage Box in strict mode, real rsync.
// What a user relies on: the new backup holds exactly the mail as it is now (new, rewritten,
// renamed, deleted files and folders), the older backup keeps exactly what it had, and a box
// whose `cp` cannot link, or a cache that does not describe the newest backup, still gives a
// complete backup the old way.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { backup, publishedOnBox, treeHashes, withRunClock } from './support/cli.js';

const sha256sumC = (folder: string) => execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: folder });

/** Every folder below root (relative), sorted: empty ones too. */
async function folders(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p, ...(await folders(root, p)));
  }
  return out.sort();
}

/** The run's log (info lines: the report on stdout does not carry them). */
async function run(s: Sandbox): Promise<{ name: string; stdout: string }> {
  const logFile = join(s.dir, 'log', 'mailcow-backup.log');
  const logBefore = (await readFile(logFile, 'utf8').catch(() => '')).length;
  const before = await publishedOnBox(s.box.root, s.remotePath);
  const r = await backup(['run', '--config', s.configPath], withRunClock(['run'], s.env));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const added = (await publishedOnBox(s.box.root, s.remotePath)).filter((n) => !before.includes(n));
  assert.equal(added.length, 1, added.join(' '));
  return { name: added[0]!, stdout: r.stdout + (await readFile(logFile, 'utf8')).slice(logBefore) };
}

/** A day of change on a maildir: every kind the copy must get right. Returns what changed. */
async function changeMail(vmail: string): Promise<{ rewritten: string; kept: string; renamedTo: string; deletedFolder: string; newFolder: string }> {
  const maildir = 'example.com/alice/Maildir';
  const cur = (await readdir(join(vmail, maildir, 'cur'))).sort();
  assert.ok(cur.length >= 3, 'the fixture has messages in cur/');
  // New mail.
  await writeFile(join(vmail, maildir, 'new', '1764990000.M1P1.host,S=20'), 'Subject: new\n\nhello\n');
  // A message read: renamed with its flags, same content and mtime (linked on the box, not sent).
  const renamedTo = `${maildir}/cur/${cur[0]!.split(':')[0]}:2,S`;
  await rename(join(vmail, maildir, 'cur', cur[0]!), join(vmail, renamedTo));
  // A message deleted.
  await rm(join(vmail, maildir, 'cur', cur[1]!));
  // dovecot's list rewritten in place (same path, new content and time).
  const rewritten = `${maildir}/dovecot-uidlist`;
  await writeFile(join(vmail, rewritten), `3 V1 N99 G${'x'.repeat(40)}\n1 :a\n`);
  await utimes(join(vmail, rewritten), new Date(), new Date(Date.now() + 5000));
  // A folder deleted whole (with mail in it), a new empty folder.
  const deletedFolder = `${maildir}/.Gone`;
  const newFolder = `${maildir}/.Fresh`;
  return { rewritten, kept: `${maildir}/cur/${cur[2]!}`, renamedTo, deletedFolder, newFolder };
}

describe('the mail tree copied on the box, only its changes sent', { timeout: 600_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let vmail: string;
  let boxBackups: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcb-tree-copy-'));
    sb = await createSandbox({ dir, mailBytes: 512 * 1024, seed: 21, strict: true });
    vmail = sb.mailcow.volume('vmail');
    boxBackups = join(sb.box.root, sb.remotePath);
  });
  after(async () => {
    await sb?.stop();
    if (!process.env.KEEP_TEST_DIR) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  test('the new backup holds the mail as it is now, the older one what it had; unchanged files are links, changed ones new files', async () => {
    const maildir = 'example.com/alice/Maildir';
    // A folder with mail that will be deleted, so the first backup holds it.
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(vmail, maildir, '.Gone', sub), { recursive: true });
    await writeFile(join(vmail, maildir, '.Gone/cur/1764900000.M9P9.host,S=12:2,S'), 'Subject: x\n\nbye\n');
    await writeFile(join(vmail, maildir, 'dovecot-uidlist'), '3 V1 N5 Gold\n');
    const first = await run(sb);
    const firstTree = await treeHashes(join(boxBackups, first.name, 'vmail'));
    const firstFolders = await folders(join(boxBackups, first.name, 'vmail'));

    const c = await changeMail(vmail);
    await rm(join(vmail, c.deletedFolder), { recursive: true });
    for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(vmail, c.newFolder, sub), { recursive: true });
    const now = await treeHashes(vmail);
    const second = await run(sb);

    // One new message and the rewritten list are sent; the renamed message is linked to its old
    // copy; deleted: the deleted message, the renamed one's old name, the deleted folder.
    assert.match(second.stdout, /mail: the box copied the previous backup's tree as hard links; 2 new or changed file\(s\) to send, 3 deletion\(s\)/);
    const secondBox = join(boxBackups, second.name, 'vmail');
    assert.deepEqual(await treeHashes(secondBox), now, 'the new backup holds exactly the mail as it is now');
    assert.deepEqual(await folders(secondBox), await folders(vmail), 'and exactly its folders (the new empty one, not the deleted one)');
    sha256sumC(join(boxBackups, second.name));

    // The older backup is untouched: its files, its folders, its manifest.
    assert.deepEqual(await treeHashes(join(boxBackups, first.name, 'vmail')), firstTree);
    assert.deepEqual(await folders(join(boxBackups, first.name, 'vmail')), firstFolders);
    sha256sumC(join(boxBackups, first.name));

    const ino = async (name: string, p: string) => (await stat(join(boxBackups, name, 'vmail', p))).ino;
    assert.equal(await ino(second.name, c.kept), await ino(first.name, c.kept), 'an unchanged message is a hard link to the older backup\'s');
    assert.notEqual(await ino(second.name, c.rewritten), await ino(first.name, c.rewritten), 'a rewritten file is a new file, never written through a link');
    const v = await backup(['verify', second.name, '--config', sb.configPath], sb.env);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test('a run without change starts no rsync of the mail tree at all, and its backup is complete', async () => {
    const third = await run(sb);
    assert.match(third.stdout, /mail: the box copied the previous backup's tree as hard links; 0 new or changed file\(s\) to send, 0 deletion\(s\)/);
    assert.deepEqual(await treeHashes(join(boxBackups, third.name, 'vmail')), await treeHashes(vmail));
    sha256sumC(join(boxBackups, third.name));
  });

  test('a symlink found by the walk: the copy started beside it is dropped, the tree uploaded whole and complete, no staging folder left', async () => {
    const link = join(vmail, 'example.com/alice/Maildir/cur/a-symlink');
    await symlink('/etc/hostname', link);
    await writeFile(join(vmail, 'example.com/alice/Maildir/new', '1764990002.M3P3.host,S=20'), 'Subject: beside\n\nhi\n');
    const before = (await sb.box.commands()).length;
    try {
      const r = await run(sb);
      assert.doesNotMatch(r.stdout, /copied the previous backup's tree/);
      const cmds = (await sb.box.commands()).slice(before).map((c) => c.command);
      assert.ok(cmds.some((c) => /^cp -al /.test(c)), `the copy was started beside the walk: ${cmds.join(' | ')}`);
      const made = join(boxBackups, r.name);
      assert.deepEqual(await treeHashes(join(made, 'vmail')), await treeHashes(vmail));
      sha256sumC(made);
      assert.deepEqual((await readdir(boxBackups)).filter((n) => n.startsWith('.')), [], 'no staging folder left');
    } finally {
      await rm(link);
    }
  });

  test('a cache that does not describe the newest backup: the tree is uploaded whole, and complete', async () => {
    const state = join(sb.dir, 'state', 'hash-cache.tree.json');
    const s = JSON.parse(await readFile(state, 'utf8')) as { backup: string };
    await writeFile(state, JSON.stringify({ ...s, backup: 'mailcow-2000-01-01-00-00-00' }));
    await writeFile(join(vmail, 'example.com/alice/Maildir/new', '1764990001.M2P2.host,S=20'), 'Subject: late\n\nhi\n');
    const fourth = await run(sb);
    assert.doesNotMatch(fourth.stdout, /copied the previous backup's tree/);
    assert.deepEqual(await treeHashes(join(boxBackups, fourth.name, 'vmail')), await treeHashes(vmail));
    sha256sumC(join(boxBackups, fourth.name));
    // And the run after it copies again: the cache describes the newest backup once more.
    const fifth = await run(sb);
    assert.match(fifth.stdout, /copied the previous backup's tree as hard links/);
  });
});

describe("a box whose cp cannot make hard links", { timeout: 300_000 }, () => {
  test('the run says so and uploads the mail tree whole: the backup is complete', async () => {
    const d = await mkdtemp(join(tmpdir(), 'mcb-tree-copy-nolink-'));
    const sb = await createSandbox({ dir: d, mailBytes: 256 * 1024, seed: 22, strict: true, hardlinksFail: true });
    try {
      const vmail = sb.mailcow.volume('vmail');
      await run(sb);
      const c = await changeMail(vmail);
      await chmod(join(vmail, c.rewritten), 0o600);
      const second = await run(sb);
      assert.match(second.stdout, /the box's 'cp -al' did not copy mailcow-\S+'s mail tree \(.*\); the mail tree is uploaded whole against it/);
      const folder = join(sb.box.root, sb.remotePath, second.name);
      assert.deepEqual(await treeHashes(join(folder, 'vmail')), await treeHashes(vmail));
      sha256sumC(folder);
      assert.deepEqual((await readdir(join(sb.box.root, sb.remotePath))).filter((n) => n.startsWith('.')), [], 'no staging folder left');
    } finally {
      await sb.stop();
      await rm(d, { recursive: true, force: true, maxRetries: 5 });
    }
  });
});
