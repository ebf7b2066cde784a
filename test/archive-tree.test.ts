// Archives stored as trees (issue 19): on the real sandbox (sshd with the box's shell, rsync, the
// stand-in mailcow script), two dumps where only some database files change. The box stores the
// unchanged files of the second backup as hard links to the first's (the same inodes), encrypted
// or not; every .age file is plain age; restores through mailcow's (stand-in) script give the
// volumes back byte for byte with their modes and owners, and a backup of the old layout (whole
// archives) still restores.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { createLogger } from '../src/adapters/logger.js';
import { createExec } from '../src/adapters/exec.js';
import { packArchive, readTreeList } from '../src/adapters/archive-tree.js';
import { runMailcowRestore } from '../src/restore/mailcow-restore.js';
import { encryptFile, loadIdentities } from '../src/adapters/age.js';
import { testArchives } from '../src/standby/verify-copy.js';
import { formatChecksumLine, isManifestPart, readManifest } from '../src/plan/manifest.js';
import { treeProblem, treeRelPath, type TreeEntry } from '../src/plan/archive-tree.js';
import { assertSameTree, backup, publishedOnBox, RESTORE_CLI, runCli, sha256File, treeHashes } from './support/cli.js';

const VOLS = ['crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;
/** What changes between the two dumps: the tables of sessions and logs. */
const CHANGED = ['mailcow/logs.ibd', 'mailcow/sogo_sessions_folder.ibd'];

/** Every regular file below `root`: relative path → inode. */
async function inodes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await fsp.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.set(path.relative(root, p), (await fsp.stat(p)).ino);
  }
  return out;
}

/** Mode, owner and group of every entry below `root` (what a restore must give back too). */
async function owners(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await fsp.readdir(root, { recursive: true, withFileTypes: true })) {
    const st = await fsp.lstat(path.join(e.parentPath, e.name));
    out.set(path.relative(root, path.join(e.parentPath, e.name)), `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
  }
  return out;
}

/** mariabackup and redis write every file afresh each dump: same bytes, a new time; two tables change. */
async function nextDay(sb: Sandbox): Promise<void> {
  const mysql = sb.mailcow.volume('mysql');
  for (const [rel] of await inodes(mysql)) {
    const f = path.join(mysql, rel);
    const buf = await fsp.readFile(f);
    if (CHANGED.includes(rel)) buf.write(`changed ${rel} ${Date.now()}`, 100);
    await fsp.writeFile(f, buf);
    const later = new Date(Date.now() + 86_400_000);
    await fsp.utimes(f, later, later);
  }
  const rdb = path.join(sb.mailcow.volume('redis'), 'dump.rdb');
  await fsp.writeFile(rdb, await fsp.readFile(rdb));
}

async function volumes(sb: Sandbox): Promise<Record<string, { hashes: Map<string, string>; owners: Map<string, string> }>> {
  const r: Record<string, { hashes: Map<string, string>; owners: Map<string, string> }> = {};
  for (const v of VOLS) r[v] = { hashes: await treeHashes(sb.mailcow.volume(v)), owners: await owners(sb.mailcow.volume(v)) };
  return r;
}

async function damage(sb: Sandbox): Promise<void> {
  await fsp.writeFile(path.join(sb.mailcow.volume('mysql'), 'mailcow/logs.ibd'), 'damaged');
  await fsp.rm(path.join(sb.mailcow.volume('redis'), 'dump.rdb'));
  await fsp.chmod(path.join(sb.mailcow.volume('crypt'), 'ecprivkey.pem'), 0o644);
  await fsp.rm(path.join(sb.mailcow.volume('postfix'), 'deferred'), { recursive: true });
}

function assertVolumes(now: Volumes, then: Volumes, what: string): void {
  for (const v of VOLS) {
    assertSameTree(now[v]!.hashes, then[v]!.hashes, `${v} ${what}`);
    assert.deepEqual(now[v]!.owners, then[v]!.owners, `${v}: modes and owners ${what}`);
  }
}

/** Splits the box's copies of the trees into those shared with the first backup and those new. */
async function sharing(first: string, second: string): Promise<{ shared: string[]; own: string[]; ownBytes: number; allBytes: number }> {
  const a = await inodes(path.join(first, 'archives'));
  const b = await inodes(path.join(second, 'archives'));
  const out = { shared: [] as string[], own: [] as string[], ownBytes: 0, allBytes: 0 };
  for (const [p, ino] of b) {
    const size = (await fsp.stat(path.join(second, 'archives', p))).size;
    out.allBytes += size;
    if (a.get(p) === ino) out.shared.push(p);
    else (out.own.push(p), (out.ownBytes += size));
  }
  return out;
}

/** Makes `folder` (a published backup on the box) what a backup of the old layout is: whole archives, no trees. */
async function toOldLayout(folder: string): Promise<void> {
  const added: string[] = [];
  for (const n of await fsp.readdir(path.join(folder, 'archives'))) {
    if (!n.endsWith('.tar.json')) continue;
    const list = await readTreeList(path.join(folder, 'archives', n));
    await packArchive(createExec(), list, path.join(folder, 'archives', n.replace(/\.tar\.json$/, '')), path.join(folder, list.archive));
    added.push(list.archive);
  }
  await fsp.rm(path.join(folder, 'archives'), { recursive: true });
  const record = JSON.parse(await fsp.readFile(path.join(folder, 'backup.json'), 'utf8'));
  delete record.archiveLayout;
  await fsp.writeFile(path.join(folder, 'backup.json'), JSON.stringify(record, null, 2));
  const lines: string[] = [];
  await readManifest(folder, (e) => void (isManifestPart(e.path) || e.path.startsWith('archives/') || e.path === 'backup.json' || lines.push(formatChecksumLine(e.hash, e.path))));
  for (const a of added) lines.push(formatChecksumLine(await sha256File(path.join(folder, a)), a));
  await fsp.rm(path.join(folder, 'manifest'), { recursive: true, force: true });
  await fsp.writeFile(path.join(folder, 'checksums.sha256'), lines.sort().join('\n') + '\n');
}

type Volumes = Awaited<ReturnType<typeof volumes>>;
interface TwoDumps {
  sb: Sandbox;
  first: string;
  second: string;
  atFirst: Volumes;
  atSecond: Volumes;
}

/** A sandbox, a backup, a day of database change, a second backup: both folders on the box and the volumes at each. */
async function twoDumps(dir: string, seed: number, config: Record<string, string> = {}): Promise<TwoDumps> {
  const sb = await createSandbox({ dir: path.join(dir, 'sb'), mailBytes: 256 * 1024, seed, mailcow: { mysqlBytes: 4 << 20 }, config });
  const atFirst = await volumes(sb);
  const r1 = await backup(['run', '--config', sb.configPath], sb.env);
  assert.equal(r1.code, 0, r1.stdout + r1.stderr);
  await nextDay(sb);
  const atSecond = await volumes(sb);
  const r2 = await backup(['run', '--config', sb.configPath], sb.env);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  const names = await publishedOnBox(sb.box.root, sb.remotePath);
  return { sb, first: path.join(sb.box.root, sb.remotePath, names[0]!), second: path.join(sb.box.root, sb.remotePath, names[1]!), atFirst, atSecond };
}

describe('archives stored as trees', { timeout: 600_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let env: Record<string, string>;
  let b: TwoDumps;
  let atFirst: Volumes;
  let atSecond: Volumes;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'archive-tree-'));
    b = await twoDumps(dir, 19);
    ({ sb, atFirst, atSecond } = b);
    env = { ...sb.env, STANDIN_PROMPTS: 'tty' };
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('the box holds the archives as trees; the second backup links every unchanged file to the first and stores only the changed ones', async () => {
    const top = await fsp.readdir(b.second);
    assert.deepEqual(top.filter((n) => /\.tar\.(zst|gz)$/.test(n)), [], 'no whole archive on the box');
    for (const c of VOLS) assert.ok((await fsp.readdir(path.join(b.second, 'archives'))).includes(`${c}.tar.json`), `archives/${c}.tar.json`);
    const record = JSON.parse(await fsp.readFile(path.join(b.second, 'backup.json'), 'utf8'));
    assert.equal(record.archiveLayout, 'tree');
    const s = await sharing(b.first, b.second);
    assert.deepEqual(s.own.filter((p) => p.startsWith('mysql/')).sort(), CHANGED.map((c) => `mysql/backup_mariadb/${c}.zst`).sort(), 'of the database only the changed tables are new');
    assert.ok(s.shared.includes('redis/redis/dump.rdb.zst'), 'redis rewrote dump.rdb with the same bytes: linked');
    assert.ok(s.shared.includes('mysql/backup_mariadb/ibdata1.zst'), 'ibdata1: linked');
    assert.ok(s.ownBytes < s.allBytes / 4, `new on the box: ${s.ownBytes} of ${s.allBytes} bytes`);
  });

  it('a full restore through the stand-in script gives back the volumes: bytes, modes, owners', async () => {
    assert.equal(JSON.parse(await fsp.readFile(path.join(b.second, 'backup.json'), 'utf8')).archiveLayout, 'tree', 'restored from the tree layout');
    await damage(sb);
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'crypt,redis,rspamd,postfix,mysql', '--yes', '--config', sb.configPath], env, 180_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertVolumes(await volumes(sb), atSecond, 'as at the second backup');
  });

  it('--download-only gives backup_*.tar.zst that zstd -t passes and the stand-in script restores', async () => {
    const out = path.join(dir, 'dl');
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'crypt,redis,rspamd,postfix,mysql', '--download-only', out, '--config', sb.configPath], env, 180_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const folder = path.join(out, path.basename(b.second));
    assert.equal(JSON.parse(await fsp.readFile(path.join(b.second, 'backup.json'), 'utf8')).archiveLayout, 'tree', 'downloaded from the tree layout');
    const names = (await fsp.readdir(folder)).sort();
    const archives = ['backup_crypt.tar.zst', 'backup_mariadb.tar.zst', 'backup_postfix.tar.zst', 'backup_redis.tar.zst', 'backup_rspamd.tar.zst'];
    for (const a of archives) {
      assert.ok(names.includes(a), `${a} in ${names.join(',')}`);
      execFileSync('zstd', ['-t', '-q', path.join(folder, a)]);
    }
    assert.ok(!names.includes('archives'), 'the trees are packed, not left beside the archives');
    await damage(sb);
    const log = createLogger({ console: 'silent', logFile: path.join(dir, 'log', 'driver.log') });
    for (const component of VOLS) {
      const res = await runMailcowRestore(log, { mailcowPath: sb.mailcow.path, location: out, folder, component, threads: 1, env });
      assert.equal(res.outcome, 'restored', component);
    }
    assertVolumes(await volumes(sb), atSecond, 'from the repacked archives');
  });

  it('a backup of the old layout (whole archives) still verifies and restores', async () => {
    await toOldLayout(b.first);
    const v = await backup(['verify', path.basename(b.first), '--config', sb.configPath], sb.env);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    await damage(sb);
    const r = await runCli(RESTORE_CLI, ['--backup', path.basename(b.first), '--components', 'crypt,redis,rspamd,postfix,mysql', '--yes', '--config', sb.configPath], env, 180_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertVolumes(await volumes(sb), atFirst, 'as at the first backup');
  });
});

describe('archives stored as trees, encrypted file by file', { timeout: 600_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let identity: string;
  let b: TwoDumps;
  let atSecond: Volumes;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'archive-tree-age-'));
    const key = await generateX25519Identity();
    identity = path.join(dir, 'backup.agekey');
    await fsp.writeFile(identity, `${key}\n`, { mode: 0o600 });
    b = await twoDumps(dir, 23, { ENCRYPT_RECIPIENTS: await identityToRecipient(key) });
    ({ sb, atSecond } = b);
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('an unchanged file keeps its ciphertext (the same inode on the box), a changed one is encrypted anew', async () => {
    const s = await sharing(b.first, b.second);
    assert.ok([...s.shared, ...s.own].every((p) => p.endsWith('.age')), 'only ciphertext on the box');
    assert.deepEqual(s.own.filter((p) => p.startsWith('mysql/')).sort(), CHANGED.map((c) => `mysql/backup_mariadb/${c}.zst.age`).sort(), 'of the database only the changed tables are new');
    assert.ok(s.shared.includes('redis/redis/dump.rdb.zst.age') && s.shared.includes('mysql/backup_mariadb/ibdata1.zst.age'));
    assert.ok(s.ownBytes < s.allBytes / 4, `new on the box: ${s.ownBytes} of ${s.allBytes} bytes`);
  });

  it('every .age file is plain age: the age CLI (and zstd -d for a tree file) gives the bytes mailcow had; no plaintext hash reaches the box', async () => {
    const root = path.join(b.second, 'archives');
    const volumeOf: Record<string, [string, string]> = { 'mysql/backup_mariadb/': ['mysql', ''], 'redis/redis/': ['redis', ''], 'crypt/crypt/': ['crypt', ''], 'rspamd/rspamd/': ['rspamd', ''], 'postfix/postfix/': ['postfix', ''] };
    let checked = 0;
    const plainHashes: string[] = [];
    for (const [p] of await inodes(root)) {
      const plain = execFileSync('age', ['-d', '-i', identity, path.join(root, p)], { maxBuffer: 64 << 20 });
      if (p.endsWith('.tar.json.age')) {
        assert.ok(Array.isArray(JSON.parse(plain.toString()).entries), p);
        continue;
      }
      const prefix = Object.keys(volumeOf).find((k) => p.startsWith(k));
      assert.ok(prefix, p);
      assert.ok(p.endsWith('.zst.age'), `${p}: a tree file is compressed, then encrypted`);
      const rel = p.slice(prefix!.length, -'.zst.age'.length);
      const expected = atSecond[volumeOf[prefix!]![0]]!.hashes.get(rel);
      const hash = createHash('sha256').update(execFileSync('zstd', ['-dc'], { input: plain, maxBuffer: 64 << 20 })).digest('hex');
      assert.equal(hash, expected, `${p} decrypts to ${volumeOf[prefix!]![0]}/${rel}`);
      plainHashes.push(hash);
      checked++;
    }
    assert.ok(checked >= 20, `${checked} files decrypted`);
    // The cipher store on this host knows them; the box must not (they would let anyone test guesses).
    const grep = (needle: string) => {
      try {
        return execFileSync('grep', ['-rlF', needle, sb.box.root], { encoding: 'utf8' });
      } catch (e) {
        if ((e as { status?: number }).status === 1) return '';
        throw e;
      }
    };
    for (const h of plainHashes) assert.equal(grep(h), '', `the plaintext hash ${h} is nowhere on the box`);
  });

  it('a full restore of the encrypted trees through the stand-in script gives back the volumes', async () => {
    assert.equal(JSON.parse(await fsp.readFile(path.join(b.second, 'backup.json'), 'utf8')).archiveLayout, 'tree', 'restored from the tree layout');
    await damage(sb);
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'crypt,redis,rspamd,postfix,mysql', '--identity', identity, '--yes', '--config', sb.configPath], { ...sb.env, STANDIN_PROMPTS: 'tty' }, 180_000);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assertVolumes(await volumes(sb), atSecond, 'as at the second backup');
  });
});

describe('which archives a tree can hold (pure)', () => {
  const e = (name: string, type: TreeEntry['type'] = 'file'): TreeEntry => ({ name, type, mode: 0o644, uid: 0, gid: 0, mtime: 0 });
  it('names as mailcow writes them (/x/…, ./x, x) find their place; the archive root needs none', () => {
    assert.equal(treeRelPath('/backup_mariadb/mailcow/logs.ibd'), 'backup_mariadb/mailcow/logs.ibd');
    assert.equal(treeRelPath('./redis/dump.rdb'), 'redis/dump.rdb');
    assert.equal(treeRelPath('/redis/'), 'redis');
    assert.equal(treeProblem([e('/', 'directory'), e('./', 'directory'), e('/redis/', 'directory'), e('/redis/dump.rdb'), e('/redis/l', 'symlink')]), undefined);
  });
  it('an archive with `..`, a name twice, or a file that is also a folder stays whole', () => {
    assert.match(treeProblem([e('/x/../etc/passwd')])!, /no place in a tree/);
    assert.match(treeProblem([e('/redis/dump.rdb'), e('redis/dump.rdb')])!, /appears twice/);
    assert.match(treeProblem([e('/a/b'), e('/a/b/c')])!, /file and a folder/);
  });
});

describe('a standby tests an encrypted tree through a pipe', () => {
  it('proves every file of the list decrypts and decompresses to the listed size; names a file that does not', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'archive-tree-standby-'));
    try {
      const key = await generateX25519Identity();
      await fsp.writeFile(path.join(dir, 'k'), `${key}\n`);
      const to = [await identityToRecipient(key)];
      const data = Buffer.alloc(70_000, 7);
      const list = { archiveTree: 1, component: 'redis', archive: 'backup_redis.tar.zst', entries: [{ name: '/redis/', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1 }, { name: '/redis/dump.rdb', type: 'file', mode: 0o644, uid: 999, gid: 1000, mtime: 1, size: data.length }] };
      await fsp.mkdir(path.join(dir, 'plain/redis'), { recursive: true });
      await fsp.writeFile(path.join(dir, 'plain/redis/dump.rdb.zst'), execFileSync('zstd', ['-c', '-q'], { input: data }));
      await fsp.writeFile(path.join(dir, 'plain/list'), JSON.stringify(list));
      await fsp.mkdir(path.join(dir, 'archives/redis/redis'), { recursive: true });
      await encryptFile(path.join(dir, 'plain/redis/dump.rdb.zst'), path.join(dir, 'archives/redis/redis/dump.rdb.zst.age'), to);
      await encryptFile(path.join(dir, 'plain/list'), path.join(dir, 'archives/redis.tar.json.age'), to);
      const files = ['archives/redis.tar.json.age', 'archives/redis/redis/dump.rdb.zst.age'];
      const ids = await loadIdentities(path.join(dir, 'k'));
      assert.deepEqual(await testArchives(createExec(), dir, files, ids), { archives: 1, decryption: 'proved' });
      assert.deepEqual(await testArchives(createExec(), dir, files, undefined), { archives: 0, decryption: 'not proved' });
      await fsp.rm(path.join(dir, 'archives/redis/redis/dump.rdb.zst.age'));
      await assert.rejects(testArchives(createExec(), dir, files, ids), /redis\/redis\/dump\.rdb\.zst: missing/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('packing a tree again (one zstd for many files)', () => {
  it('gives each entry exactly its listed bytes across batches of files; a tree file longer or shorter than its list is an error, never a shifted archive', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pack-'));
    try {
      const exec = createExec(undefined, createLogger({ console: 'silent' }).redact);
      const entries: TreeEntry[] = [{ name: './', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }];
      // More files than one zstd call takes, some empty: the boundaries must fall right.
      for (let i = 0; i < 300; i++) {
        const body = Buffer.from(i % 7 === 0 ? '' : `file ${i} `.repeat(i));
        await fsp.writeFile(path.join(dir, `f${i}`), body);
        execFileSync('zstd', ['-q', '--rm', path.join(dir, `f${i}`)]);
        entries.push({ name: `./f${i}`, type: 'file', mode: 0o640, uid: 999, gid: 999, mtime: 1_700_000_000, size: body.length });
      }
      const list = { archiveTree: 1, component: 'redis', archive: 'backup_redis.tar.zst', entries };
      const out = path.join(dir, 'out.tar.zst');
      await packArchive(exec, list, dir, out);
      const x = path.join(dir, 'x');
      await fsp.mkdir(x);
      execFileSync('tar', ['--use-compress-program=zstd -d', '-xf', out, '-C', x]);
      for (let i = 0; i < 300; i++) assert.equal(await fsp.readFile(path.join(x, `f${i}`), 'utf8'), i % 7 === 0 ? '' : `file ${i} `.repeat(i), `f${i}`);
      for (const [k, delta] of [[150, 1], [299, -1]] as const) {
        const wrong = { ...list, entries: entries.map((e, i) => (i === k + 1 ? { ...e, size: e.size! + delta } : e)) };
        await assert.rejects(packArchive(exec, wrong, dir, path.join(dir, `bad${k}.tar.zst`)), /tree file|list says/, `f${k} listed ${delta > 0 ? 'longer' : 'shorter'} than it is`);
      }
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
