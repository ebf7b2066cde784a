// Hourly runs (issue 16): the real CLI "at" given times (MAILCOW_BACKUP_TEST_CLOCK) against the
// loopback Storage Box in strict mode. A run dumps with mailcow's script only when the dump is
// due (DUMP_INTERVAL_HOURS); in between it sends the mail and takes the newest backup's dump by
// hard link on the box, and every backup stays complete on its own.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { createSandbox, fakeBinDir, type Sandbox } from '../src/sandbox/sandbox.js';
import { mutateDatabases } from '../src/sandbox/mailcow-standin.js';
import { backupNameFor } from '../src/plan/names.js';
import { backup, publishedOnBox, RESTORE_CLI, runCli, treeHashes } from './support/cli.js';

let sb: Sandbox;
let dir: string;
let boxBackups: string;
let calls: string;
let env: Record<string, string>;

const DUMP_FILES = ['backup_crypt.tar.zst', 'backup_redis.tar.zst', 'backup_rspamd.tar.zst', 'backup_postfix.tar.zst', 'backup_mariadb.tar.zst', 'mailcow.conf'];
/** The dump as the box holds it: the archives as trees (issue 19), some of their files. */
const ON_BOX = ['crypt', 'redis', 'rspamd', 'postfix', 'mysql'].map((c) => `archives/${c}.tar.json`).concat('archives/redis/redis/dump.rdb.zst', 'archives/mysql/backup_mariadb/ibdata1.zst', 'mailcow.conf');
const at = (iso: string) => ({ ...env, MAILCOW_BACKUP_TEST_CLOCK: iso });
const dockerCalls = async () => (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
const record = async (name: string) => JSON.parse(await readFile(join(boxBackups, name, 'backup.json'), 'utf8')) as Record<string, unknown>;
/** The README's check of a whole backup, by coreutils in its folder on the box. */
const sha256sumC = (name: string) => execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: join(boxBackups, name) });

async function runAt(iso: string, s: Sandbox = sb, e: Record<string, string> = env): Promise<string> {
  const before = await publishedOnBox(s.box.root, s.remotePath);
  const r = await backup(['run', '--config', s.configPath], { ...e, MAILCOW_BACKUP_TEST_CLOCK: iso });
  assert.equal(r.code, 0, r.stderr);
  const added = (await publishedOnBox(s.box.root, s.remotePath)).filter((n) => !before.includes(n));
  assert.equal(added.length, 1, added.join(' '));
  return added[0]!;
}

async function newMail(n: number, s: Sandbox = sb): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = join(s.mailcow.volume('vmail'), 'example.com/alice/Maildir/new', `18000${n}${i}.M${i}P1.host,S=40`);
    await writeFile(p, `Subject: hourly ${n}/${i}\n\nmail that arrived after the dump\n`);
    files.push(p);
  }
  return files;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-hourly-'));
  sb = await createSandbox({ dir, mailBytes: 1024 * 1024, seed: 16, strict: true, config: { DUMP_INTERVAL_HOURS: '24', KEEP_HOURLY: '2', REMOTE_RETENTION_DAYS: '1' } });
  await writeFile(sb.configPath, `${await readFile(sb.configPath, 'utf8')}PROMETHEUS_TEXTFILE=${join(dir, 'state', 'backup.prom')}\n`);
  // The vmail folder named in the config, so a run needs docker only to dump: every call is logged.
  await writeFile(sb.configPath, `${await readFile(sb.configPath, 'utf8')}VMAIL_VOLUME_PATH=${sb.mailcow.volume('vmail')}\n`);
  const bin = join(dir, 'bin');
  await mkdir(bin);
  calls = join(dir, 'docker-calls.log');
  await writeFile(join(bin, 'docker'), `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${join(fakeBinDir(), 'docker')}' "$@"\n`);
  // mailcow's script names its folder with `date`: the host's clock is the test clock too.
  await writeFile(
    join(bin, 'date'),
    `#!/bin/sh\nif [ -n "$MAILCOW_BACKUP_TEST_CLOCK" ] && [ "$#" = 1 ] && [ "$1" = '+%Y-%m-%d-%H-%M-%S' ]; then exec /usr/bin/date -d "$MAILCOW_BACKUP_TEST_CLOCK" "$1"; fi\nexec /usr/bin/date "$@"\n`,
  );
  await chmod(join(bin, 'docker'), 0o755);
  await chmod(join(bin, 'date'), 0o755);
  env = { ...sb.env, PATH: `${bin}:${sb.env.PATH}`, STANDIN_PROMPTS: 'tty' };
  boxBackups = join(sb.box.root, sb.remotePath);
});

after(async () => {
  await sb?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

describe('hourly runs: a dump a day, the mail every hour', { timeout: 600_000 }, () => {
  let first: string;
  let second: string;
  let third: string;
  let dbAtDump: Map<string, string>;
  let mailAt4: Map<string, string>;

  test('03:00 dumps with mailcow\'s script and records when', async () => {
    first = await runAt('2026-12-01T03:00:00Z');
    assert.equal(first, backupNameFor(new Date('2026-12-01T03:00:00Z')));
    assert.ok((await sb.mailcow.readActions()).some((a) => a.startsWith('run mailcow-backup backup mysql')));
    const r = await record(first);
    assert.equal(r.dumpedBy, first);
    assert.match(String(r.dumpedAt), /^2026-12-01T03:00:0\d/);
    dbAtDump = await treeHashes(sb.mailcow.volume('mysql'));
  });

  test('04:00 sends the new mail, no script, no docker; its archives are the 03:00 ones (same inodes); it is complete and listed with its dump', async () => {
    await mutateDatabases(sb.mailcow, 4);
    assert.notDeepEqual(await treeHashes(sb.mailcow.volume('mysql')), dbAtDump);
    const mail = await newMail(3);
    mailAt4 = await treeHashes(sb.mailcow.volume('vmail'));
    const actions = (await sb.mailcow.readActions()).length;
    const docker = (await dockerCalls()).length;

    second = await runAt('2026-12-01T04:00:00Z');
    // Named by the tool's clock when it links the dump, a few seconds into the run.
    assert.ok(second.startsWith(backupNameFor(new Date('2026-12-01T04:00:00Z')).slice(0, -5)), second);
    assert.deepEqual((await sb.mailcow.readActions()).slice(actions), [], 'mailcow\'s script did not run');
    assert.deepEqual((await dockerCalls()).slice(docker), [], 'docker was not called');

    const linked: string[] = process.arch === 'x64' ? [...ON_BOX, '.x86_64'] : ON_BOX;
    for (const f of linked) {
      const inodes: number[] = await Promise.all([first, second].map(async (n) => (await stat(join(boxBackups, n, f))).ino));
      assert.equal(inodes[1], inodes[0], `${f} is a hard link to the 03:00 backup's`);
    }
    assert.deepEqual(await treeHashes(join(boxBackups, second, 'vmail')), mailAt4);
    for (const m of mail) assert.ok((await readdir(join(boxBackups, second, 'vmail/example.com/alice/Maildir/new'))).includes(m.split('/').pop()!));
    sha256sumC(second);
    const r = await record(second);
    assert.equal(r.dumpedBy, first);
    assert.equal(r.dumpedAt, (await record(first)).dumpedAt);

    const l = await backup(['list', '--config', sb.configPath], at('2026-12-01T04:10:00Z'));
    assert.equal(l.code, 0, l.stderr);
    const line = l.stdout.split('\n').find((x) => x.includes(second));
    const local = new Date('2026-12-01T03:00:00Z').toLocaleString('sv-SE').slice(0, 16);
    assert.ok(line?.includes(`dump ${local} (of ${first})`), l.stdout);

    // The mail's RPO and the database's, apart: in status, its JSON and the Prometheus file.
    const s = await backup(['status', '--config', sb.configPath], at('2026-12-01T04:10:00Z'));
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.match(s.stdout, new RegExp(`newest backup  ${second}, \\d+ min old`));
    assert.match(s.stdout, new RegExp(`newest dump    ${local}, 1\\.2 h old \\(database; made by ${first}, linked into the newer backups\\)`));
    const j = JSON.parse((await backup(['status', '--json', '--config', sb.configPath], at('2026-12-01T04:10:00Z'))).stdout);
    assert.equal(j.newestDump.by, first);
    assert.equal(j.newestDump.ageHours, 1.2);
    const prom = await readFile(join(dir, 'state', 'backup.prom'), 'utf8');
    assert.match(prom, new RegExp(`^mailcow_backup_last_dump_timestamp_seconds ${Date.parse(String((await record(first)).dumpedAt)) / 1000}$`, 'm'));
  });

  test('a full restore from the 04:00 backup gives the 03:00 database and the 04:00 mail; --download-only works from it', async () => {
    await mutateDatabases(sb.mailcow, 5);
    await newMail(2);
    const r = await runCli(RESTORE_CLI, ['--backup', second, '--components', 'all', '--yes', '--config', sb.configPath], env, 180_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(await treeHashes(sb.mailcow.volume('mysql')), dbAtDump);
    assert.deepEqual(await treeHashes(sb.mailcow.volume('vmail')), mailAt4);

    const out = join(dir, 'dl');
    const d = await runCli(RESTORE_CLI, ['--backup', second, '--download-only', out, '--config', sb.configPath], env, 180_000);
    assert.equal(d.code, 0, d.stderr + d.stdout);
    const folder = join(out, (await readdir(out)).find((n) => n.startsWith('mailcow-'))!);
    for (const f of DUMP_FILES) assert.ok((await stat(join(folder, f))).size > 0, f);
    await rm(out, { recursive: true, force: true });
  });

  test('the next day a run 30 s earlier than the dump run still dumps', async () => {
    // One more run between dumps first: its dump comes from the 04:00 backup's links.
    third = await runAt('2026-12-01T05:00:00Z');
    assert.equal((await record(third)).dumpedBy, first);
    const actions = (await sb.mailcow.readActions()).length;
    const next = await runAt('2026-12-02T02:59:30Z');
    assert.ok((await sb.mailcow.readActions()).slice(actions).some((a) => a.startsWith('run mailcow-backup backup mysql')), 'mailcow\'s script ran');
    assert.equal((await record(next)).dumpedBy, next);
    // A new dump, not the 03:00 one (which the 05:00 backup holds; the 03:00 backup itself may be pruned by now).
    const [a, b] = await Promise.all([stat(join(boxBackups, third, 'archives/mysql.tar.json')), stat(join(boxBackups, next, 'archives/mysql.tar.json'))]);
    assert.notEqual(b.ino, a.ino);
  });

  test('KEEP_HOURLY prunes the dump-making backup; the backup whose archives are links to it keeps them, and sha256sum -c passes in it', async () => {
    const r = await backup(['prune', '--config', sb.configPath], at('2026-12-02T06:00:00Z'));
    assert.equal(r.code, 0, r.stderr);
    const left = await publishedOnBox(sb.box.root, sb.remotePath);
    // The newest of each of the last 2 hours with a backup: 2026-12-02 02h and 2026-12-01 05h.
    assert.deepEqual(left, [third, backupNameFor(new Date('2026-12-02T02:59:30Z'))]);
    for (const f of ON_BOX) assert.ok((await stat(join(boxBackups, third, f))).size > 0, f);
    sha256sumC(third);
  });
});

describe('a box that refuses hard links', { timeout: 300_000 }, () => {
  test('a run between dumps dumps after all, says why, and publishes a complete backup', async () => {
    const d = await mkdtemp(join(tmpdir(), 'mcb-hourly-nolink-'));
    const box = await createSandbox({ dir: d, mailBytes: 256 * 1024, seed: 17, strict: true, hardlinksFail: true, config: { DUMP_INTERVAL_HOURS: '24' } });
    try {
      const e = { ...box.env, PATH: `${join(dir, 'bin')}:${box.env.PATH}` };
      const first = await backup(['run', '--config', box.configPath], { ...e, MAILCOW_BACKUP_TEST_CLOCK: '2026-12-01T03:00:00Z' });
      assert.equal(first.code, 0, first.stderr);
      const actions = (await box.mailcow.readActions()).length;
      const r = await backup(['run', '--config', box.configPath], { ...e, MAILCOW_BACKUP_TEST_CLOCK: '2026-12-01T04:00:00Z' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /warning +the dump was not due, but mailcow-\S+'s could not be linked \(the Storage Box refused a hard link through sftp\): this run dumps/);
      assert.ok((await box.mailcow.readActions()).slice(actions).some((a) => a.startsWith('run mailcow-backup backup mysql')));
      const names = await publishedOnBox(box.box.root, box.remotePath);
      assert.equal(names.length, 2);
      const folder = join(box.box.root, box.remotePath, names[1]!);
      assert.equal(JSON.parse(await readFile(join(folder, 'backup.json'), 'utf8')).dumpedBy, names[1]);
      execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: folder });
      assert.deepEqual((await readdir(join(box.box.root, box.remotePath))).filter((n) => n.startsWith('.')), [], 'no staging folder left');
    } finally {
      await box.stop();
      await rm(d, { recursive: true, force: true, maxRetries: 5 });
    }
  });
});

/** Every file of a backup folder but its mail, manifest and record: what its dump put there, whatever the layout. */
async function dumpFilesOf(folder: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(folder, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && ['vmail', 'manifest', 'checksums.sha256', 'backup.json'].includes(e.name)) continue;
    if (e.isDirectory()) out.push(...(await dumpFilesOf(folder, p)));
    else out.push(p);
  }
  return out.sort();
}

describe('carrying an encrypted dump (ENCRYPT_RECIPIENTS)', { timeout: 600_000 }, () => {
  test('04:00 links every file of the 03:00 dump (same inodes, still encrypted), verifies, and a full restore with the identity gives the 03:00 database and the 04:00 mail', async () => {
    const d = await mkdtemp(join(tmpdir(), 'mcb-hourly-age-'));
    const secret = await generateX25519Identity();
    const identity = join(d, 'backup.agekey');
    await writeFile(identity, `${secret}\n`, { mode: 0o600 });
    await writeFile(join(d, 'recipients.txt'), `${await identityToRecipient(secret)}\n`);
    const box = await createSandbox({ dir: join(d, 'sb'), mailBytes: 512 * 1024, seed: 18, strict: true, config: { DUMP_INTERVAL_HOURS: '24', ENCRYPT_RECIPIENTS: join(d, 'recipients.txt') } });
    try {
      await writeFile(box.configPath, `${await readFile(box.configPath, 'utf8')}VMAIL_VOLUME_PATH=${box.mailcow.volume('vmail')}\n`);
      const e = { ...box.env, PATH: `${join(dir, 'bin')}:${box.env.PATH}`, STANDIN_PROMPTS: 'tty' };
      const folder = (n: string) => join(box.box.root, box.remotePath, n);

      const first = await runAt('2026-12-01T03:00:00Z', box, e);
      const dbAtDump = await treeHashes(box.mailcow.volume('mysql'));
      const dump = await dumpFilesOf(folder(first));
      assert.ok(dump.length > 0, 'the 03:00 backup holds a dump');
      // Encrypted on this host: mailcow.conf (database passwords) is on the box in no file as plain text.
      const conf = (await readFile(join(box.mailcow.path, 'mailcow.conf'), 'utf8')).trim();
      for (const f of dump) assert.ok(!(await readFile(join(folder(first), f), 'utf8')).includes(conf), `${f} holds mailcow.conf in plain text`);
      assert.ok((await Promise.all(dump.map((f) => readFile(join(folder(first), f), 'utf8')))).some((t) => t.startsWith('age-encryption.org/v1\n')), 'the dump is age-encrypted');

      await mutateDatabases(box.mailcow, 4);
      await newMail(3, box);
      const mailAt4 = await treeHashes(box.mailcow.volume('vmail'));
      const actions = (await box.mailcow.readActions()).length;
      const second = await runAt('2026-12-01T04:00:00Z', box, e);
      assert.deepEqual((await box.mailcow.readActions()).slice(actions), [], "mailcow's script did not run");
      assert.deepEqual(await dumpFilesOf(folder(second)), dump, 'the 04:00 backup holds the same dump files');
      for (const f of dump) {
        const [a, b] = await Promise.all([stat(join(folder(first), f)), stat(join(folder(second), f))]);
        assert.equal(b.ino, a.ino, `${f} is a hard link to the 03:00 backup's`);
      }
      execFileSync('sh', ['-c', 'zcat -f checksums.sha256 manifest/*.gz | sha256sum --quiet --strict -c'], { cwd: folder(second) });
      const v = await backup(['verify', second, '--config', box.configPath], { ...e, MAILCOW_BACKUP_TEST_CLOCK: '2026-12-01T04:10:00Z' });
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.match(v.stdout, new RegExp(`^OK +${second} `, 'm'));

      await mutateDatabases(box.mailcow, 5);
      await newMail(2, box);
      const r = await runCli(RESTORE_CLI, ['--backup', second, '--components', 'all', '--yes', '--identity', identity, '--config', box.configPath], e, 180_000);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.deepEqual(await treeHashes(box.mailcow.volume('mysql')), dbAtDump);
      assert.deepEqual(await treeHashes(box.mailcow.volume('vmail')), mailAt4);
    } finally {
      await box.stop();
      await rm(d, { recursive: true, force: true, maxRetries: 5 });
    }
  });
});
