// Encryption of the components before they leave the host, end to end on the sandbox with the
// real age library: the box gets only ciphertext for mailcow.conf and the archives, the manifest
// and the box's own hashes cover them, and restore needs (and checks) the private key first.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'dotenv';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { recipientFingerprint } from '../src/plan/age-keys.js';
import { parseConfigText } from '../src/config/load.js';
import { isUserError } from '../src/errors.js';
import { mailCryptVerdict } from '../src/plan/mail-crypt.js';
import { sampleMessages } from '../src/adapters/mail-crypt.js';
import { backup, publishedOnBox, RESTORE_CLI, runCli, sha256File, treeHashes } from './support/cli.js';
import { openComponentList, startWizard } from './support/tmux.js';

const VOLS = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;
const ARCHIVES = ['backup_crypt.tar.zst', 'backup_mariadb.tar.zst', 'backup_postfix.tar.zst', 'backup_redis.tar.zst', 'backup_rspamd.tar.zst'];
/** The archives as the box holds them (issue 19: trees, encrypted file by file): their entry lists. */
const LISTS = ['crypt', 'mysql', 'postfix', 'redis', 'rspamd'].map((c) => `archives/${c}.tar.json`);

/** Every file under `root` whose bytes contain `needle`. */
async function filesContaining(root: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    if ((await fsp.readFile(p)).includes(needle)) hits.push(path.relative(root, p));
  }
  return hits;
}

describe('age encryption of the components', { timeout: 300_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let env: Record<string, string>;
  let identity: string;
  let secretKey: string;
  let recipient: string;
  let wrongIdentity: string;
  let backupDir: string;
  let conf: Record<string, string>;
  let confHash: string;
  let atBackup: Record<string, Map<string, string>>;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'age-test-'));
    secretKey = await generateX25519Identity();
    recipient = await identityToRecipient(secretKey);
    identity = path.join(dir, 'backup.agekey');
    await fsp.writeFile(identity, `# created: test\n# public key: ${recipient}\n${secretKey}\n`, { mode: 0o600 });
    wrongIdentity = path.join(dir, 'other.agekey');
    await fsp.writeFile(wrongIdentity, `${await generateX25519Identity()}\n`, { mode: 0o600 });
    // A recipients file with a second key: both may decrypt, the run record names both.
    const second = await identityToRecipient(await generateX25519Identity());
    await fsp.writeFile(path.join(dir, 'recipients.txt'), `# the admin's offline key\n${recipient}\n\n# a colleague\n${second}\n`);
    sb = await createSandbox({ dir: path.join(dir, 'sb'), mailBytes: 1024 * 1024, seed: 11, config: { ENCRYPT_RECIPIENTS: path.join(dir, 'recipients.txt') } });
    env = { ...sb.env, STANDIN_PROMPTS: 'tty' };
    conf = parse(await fsp.readFile(path.join(sb.mailcow.path, 'mailcow.conf'), 'utf8'));
    confHash = await sha256File(path.join(sb.mailcow.path, 'mailcow.conf'));
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    atBackup = {};
    for (const v of VOLS) atBackup[v] = await treeHashes(sb.mailcow.volume(v));
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.equal(names.length, 1);
    backupDir = path.join(sb.box.root, sb.remotePath, names[0]!);
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('the box holds only .age files for mailcow.conf and the archives, and no byte of the DB passwords', async () => {
    const top = (await fsp.readdir(backupDir, { recursive: true })).sort();
    for (const a of ARCHIVES) assert.ok(!top.includes(a) && !top.includes(`${a}.age`), `${a} is stored as a tree`);
    for (const e of await fsp.readdir(path.join(backupDir, 'archives'), { recursive: true, withFileTypes: true })) if (e.isFile()) assert.ok(e.name.endsWith('.age'), `${e.name} below archives/ is ciphertext`);
    for (const a of ['mailcow.conf', ...LISTS]) {
      assert.ok(top.includes(`${a}.age`), `${a}.age is on the box: ${top.join(' ')}`);
      assert.ok(!top.includes(a), `plaintext ${a} is not on the box`);
    }
    assert.ok(top.includes('vmail'), 'vmail stays a file tree');
    assert.equal((await fsp.readFile(path.join(backupDir, 'mailcow.conf.age'), 'latin1')).split('\n')[0], 'age-encryption.org/v1');
    for (const key of ['DBPASS', 'DBROOT', 'REDISPASS']) {
      assert.ok(conf[key] && conf[key]!.length >= 8, `the stand-in's mailcow.conf has ${key}`);
      assert.deepEqual(await filesContaining(sb.box.root, conf[key]!), [], `${key} appears nowhere on the box`);
    }
    // nor does a plaintext copy stay behind on this host
    assert.deepEqual(await filesContaining(path.join(sb.dir, 'tmp'), conf.DBPASS!).catch(() => []), []);
  });

  it('the manifest covers the encrypted files, the record names them and the recipients, and the box re-verifies them', async () => {
    const sums = await fsp.readFile(path.join(backupDir, 'checksums.sha256'), 'utf8');
    for (const a of ['mailcow.conf', ...LISTS]) {
      const line = sums.split('\n').find((l) => l.endsWith(`  ${a}.age`));
      assert.ok(line, `checksums.sha256 lists ${a}.age`);
      assert.equal(line!.slice(0, 64), await sha256File(path.join(backupDir, `${a}.age`)));
    }
    assert.ok(!/ {2}mailcow\.conf$/m.test(sums), 'no plaintext name in the manifest');
    const record = JSON.parse(await fsp.readFile(path.join(backupDir, 'backup.json'), 'utf8'));
    for (const f of ['mailcow.conf', ...LISTS]) assert.ok(record.encryption.files.includes(`${f}.age`), f);
    assert.ok(record.encryption.files.every((f: string) => f.endsWith('.age')), record.encryption.files.join(' '));
    assert.equal(record.encryption.recipients.length, 2);
    assert.equal(record.encryption.recipients[0].fingerprint, recipientFingerprint(recipient));
    // `verify` (the scrub) makes the box hash every file again against the manifest
    const v = await backup(['verify', '--latest', '--config', sb.configPath], sb.env);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /OK/);
  });

  const ageCli = (() => {
    try {
      execFileSync('age', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it('the files are standard age: the age CLI decrypts mailcow.conf.age to the original bytes', { skip: ageCli ? false : 'the age CLI is not installed (Debian: apt install age)' }, async () => {
    const out = path.join(dir, 'cli-mailcow.conf');
    execFileSync('age', ['-d', '-i', identity, '-o', out, path.join(backupDir, 'mailcow.conf.age')]);
    assert.equal(await sha256File(out), confHash);
    await fsp.rm(out);
  });

  it('check says encryption is on, and whether vmail is mail_crypt-encrypted', async () => {
    const r = await backup(['check', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^OK +encryption +on: .*${recipientFingerprint(recipient).replace(/[+/]/g, '.')}`, 'm'));
    // the fixture's mail is plaintext: the check must not claim otherwise
    assert.match(r.stdout, /^WARN +mail_crypt +off: none of \d+ sampled messages is encrypted/m);
  });

  it('a wrong identity is refused after the small files, before any big download; nothing is changed', async () => {
    const before = await treeHashes(sb.mailcow.volume('mysql'));
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--identity', wrongIdentity, '--config', sb.configPath], env);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const errLines = r.stderr.split('\n').filter((l) => /wrong age key/.test(l));
    assert.equal(errLines.length, 1, r.stderr);
    assert.match(errLines[0]!, new RegExp(`not one .* was encrypted to \\(${recipientFingerprint(recipient).replace(/[+/]/g, '.')}`));
    const fetched = await fsp.readdir(path.join(sb.dir, 'tmp', 'restore', path.basename(backupDir))).catch(() => [] as string[]);
    assert.deepEqual(fetched.filter((n) => n.startsWith('backup_') || n === 'vmail'), [], `only metadata was fetched: ${fetched.join(' ')}`);
    assert.deepEqual(await treeHashes(sb.mailcow.volume('mysql')), before);
  });

  it('an encrypted backup without --identity: exit 2 naming the flag', async () => {
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'crypt', '--check-only', '--config', sb.configPath], env);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /is encrypted with age .*--identity PATH/);
  });

  it('--download-only with the right identity gives back the original mailcow.conf, byte for byte', async () => {
    const out = path.join(dir, 'dl');
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--download-only', out, '--components', 'crypt,mysql', '--identity', identity, '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const folder = path.join(out, path.basename(backupDir));
    assert.equal(await sha256File(path.join(folder, 'mailcow.conf')), confHash);
    const names = await fsp.readdir(folder);
    assert.ok(names.includes('backup_crypt.tar.zst') && names.includes('backup_mariadb.tar.zst'), names.join(' '));
    assert.deepEqual(names.filter((n) => n.endsWith('.age')), [], 'the ciphertext is replaced by the plaintext');
  });

  it('restore with the right identity brings every volume back to backup time', async () => {
    await fsp.writeFile(path.join(sb.mailcow.volume('crypt'), 'ecprivkey.pem'), 'wrong key');
    await fsp.writeFile(path.join(sb.mailcow.volume('rspamd'), 'stats.ucl'), 'changed');
    await fsp.rm(path.join(sb.mailcow.volume('postfix'), 'deferred'), { recursive: true, force: true });
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'all', '--yes', '--identity', identity, '--config', sb.configPath], env, 180_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const v of VOLS) assert.deepEqual(await treeHashes(sb.mailcow.volume(v)), atBackup[v], `${v} is as at backup time`);
  });

  it('the wizard asks for the identity file of an encrypted backup, shows it checked, and restores with it', async () => {
    const crypt = sb.mailcow.volume('crypt');
    await fsp.writeFile(path.join(crypt, 'ecpubkey.pem'), 'not the key');
    const t = startWizard(`age-wizard-${process.pid}`, RESTORE_CLI, ['--config', sb.configPath], env, 220);
    try {
      await openComponentList(t);
      t.keys('Down');
      t.keys('Space'); // crypt
      await t.waitFor(/◉ crypt|\(\*\) crypt|◉.*crypt/);
      t.keys('Enter');
      const asked = await t.waitFor(/Path of the age identity file/);
      assert.match(asked, /is encrypted with age/);
      t.type(identity);
      t.keys('Enter');
      const plan = await t.waitFor(/Type RESTORE to start/);
      assert.match(plan, /OK\s+encryption\s+age: .* decrypts this backup/);
      assert.ok(!plan.includes(secretKey), 'the private key is not shown');
      t.type('RESTORE');
      t.keys('Enter');
      const done = await t.waitFor(/WIZARD-EXIT=\d+/, 90_000);
      assert.match(done, /WIZARD-EXIT=0/, done);
      assert.deepEqual(await treeHashes(crypt), atBackup.crypt);
    } finally {
      t.close();
    }
  });

  it('secrets never reach the log or the console: DB passwords, the private key', async () => {
    // Its own decryption (the log's "decrypts" line is this restore's, not an earlier test's).
    const r = await runCli(RESTORE_CLI, ['--backup', 'latest', '--components', 'mysql', '--check-only', '--identity', identity, '--debug', '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const s of [conf.DBPASS!, secretKey]) assert.ok(!(r.stdout + r.stderr).includes(s), 'a secret is on the console');
    const log = await fsp.readFile(path.join(sb.dir, 'log', 'mailcow-backup.log'), 'utf8');
    assert.match(log, /encrypted .*mailcow\.conf\.age/);
    assert.match(log, /decrypts mailcow-/);
    assert.match(log, /encrypted +\d+ files \(mailcow.conf, archives\) with age for SHA256:/, "the run summary says so");
    for (const s of [conf.DBPASS!, conf.DBROOT!, conf.REDISPASS!, secretKey, secretKey.slice(15, 40)]) assert.ok(!log.includes(s), 'a secret is in the log');
  });

  it('a bad recipient in the config: exit 2, one line per bad value, a private key never echoed', async () => {
    const good = await fsp.readFile(sb.configPath, 'utf8');
    const typo = recipient.slice(0, 20) + (recipient[20] === 'q' ? 'p' : 'q') + recipient.slice(21);
    try {
      await fsp.writeFile(sb.configPath, good.replace(/^ENCRYPT_RECIPIENTS=.*$/m, `ENCRYPT_RECIPIENTS=${recipient},${typo} ${secretKey}`));
      const r = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      // one line for the key, as for every key, naming each bad value
      const lines = r.stderr.split('\n').filter((l) => l.includes('ENCRYPT_RECIPIENTS'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /value 2 '.*' has a bad checksum.*; value 3 is an age PRIVATE key/);
      assert.ok(!r.stderr.includes(secretKey) && !r.stdout.includes(secretKey), 'the private key is not echoed');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await fsp.writeFile(sb.configPath, good);
    }
  });

  it('list, restore --list and status say which backups are encrypted, and to whom', async () => {
    const good = await fsp.readFile(sb.configPath, 'utf8');
    const [encrypted] = await publishedOnBox(sb.box.root, sb.remotePath);
    const keys = (await fsp.readFile(path.join(dir, 'recipients.txt'), 'utf8')).split('\n').filter((l) => l.startsWith('age1'));
    assert.equal(keys.length, 2);
    const fps = keys.map(recipientFingerprint);
    const esc = (x: string) => x.replace(/[+/]/g, '.');
    try {
      // The same host a day later without ENCRYPT_RECIPIENTS: a backup in plaintext.
      await fsp.writeFile(sb.configPath, good.replace(/^ENCRYPT_RECIPIENTS=.*\n/m, ''));
      const r = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const plain = (await publishedOnBox(sb.box.root, sb.remotePath)).find((n) => n !== encrypted)!;
      const list = await backup(['list', '--config', sb.configPath], sb.env);
      assert.equal(list.code, 0, list.stderr);
      const line = (n: string) => list.stdout.split('\n').find((l) => l.startsWith(n)) ?? '';
      assert.match(line(encrypted!), new RegExp(`age: ${esc(fps[0]!)}, ${esc(fps[1]!)}$`));
      assert.match(line(plain), / no$/);
      for (const [cli, args] of [[undefined, ['list', '--json']], [RESTORE_CLI, ['--list', '--json']]] as const) {
        const j = cli ? await runCli(cli, [...args, '--config', sb.configPath], env) : await backup([...args, '--config', sb.configPath], sb.env);
        const listed = JSON.parse(j.stdout) as { name: string; encryption: unknown }[];
        assert.deepEqual(Object.fromEntries(listed.map((b) => [b.name, b.encryption])), { [encrypted!]: { tool: 'age', recipients: fps }, [plain]: null }, args.join(' '));
      }
      const status = await backup(['status', '--config', sb.configPath], sb.env);
      assert.match(status.stdout, /^encrypted +no \(ENCRYPT_RECIPIENTS was not set for it\)$/m);
      // Encrypted again: the newest is encrypted, and status names the keys.
      await fsp.writeFile(sb.configPath, good);
      assert.equal((await backup(['run', '--config', sb.configPath], sb.env)).code, 0);
      const again = await backup(['status', '--config', sb.configPath], sb.env);
      assert.match(again.stdout, new RegExp(`^encrypted +with age for ${esc(fps[0]!)}, ${esc(fps[1]!)}$`, 'm'));
    } finally {
      await fsp.writeFile(sb.configPath, good);
    }
  });
});

describe('ENCRYPT_RECIPIENTS parsing', () => {
  const base = 'HETZNER_HOST=h.example\nHETZNER_USER=u1\n';
  const problems = (value: string) => {
    try {
      parseConfigText(`${base}ENCRYPT_RECIPIENTS=${value}\n`, '/x/.env');
      return [];
    } catch (e) {
      assert.ok(isUserError(e));
      return e.details;
    }
  };
  it('empty is off, the default; one or more keys are taken', async () => {
    assert.equal(parseConfigText(base, '/x/.env').config.ENCRYPT_RECIPIENTS, undefined);
    const a = await identityToRecipient(await generateX25519Identity());
    const b = await identityToRecipient(await generateX25519Identity());
    assert.deepEqual(parseConfigText(`${base}ENCRYPT_RECIPIENTS=${a}, ${b}\n`, '/x/.env').config.ENCRYPT_RECIPIENTS, [a, b]);
  });
  it('names the problem of each bad value', () => {
    assert.match(problems('hello')[0]!, /'hello' is not an age public key/);
    assert.match(problems('ssh-ed25519')[0]!, /SSH key/);
    assert.match(problems('/nonexistent/recipients')[0]!, /does not exist/);
  });
});

describe('mail_crypt detection', () => {
  it('counts messages that carry dovecot mail_crypt header, and says what it found', async () => {
    const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'mailcrypt-'));
    try {
      const cur = path.join(d, 'example.com/alice/Maildir/cur');
      await fsp.mkdir(cur, { recursive: true });
      await fsp.writeFile(path.join(cur, '1.host:2,S'), Buffer.concat([Buffer.from('CRYPTED\x03\x07\x02', 'latin1'), Buffer.alloc(100, 7)]));
      await fsp.writeFile(path.join(cur, '2.host:2,S'), 'From: a@b\r\nSubject: plain\r\n\r\nhello\r\n');
      await fsp.writeFile(path.join(d, 'example.com/alice/dovecot-uidlist'), 'CRYPTED\x03\x07 not a message');
      const s = await sampleMessages(d);
      assert.deepEqual(s, { sampled: 2, encrypted: 1 });
      assert.equal(mailCryptVerdict({ ...s, saveVersion: 2, keys: true })[0], 'WARN');
      assert.equal(mailCryptVerdict({ sampled: 2, encrypted: 2, saveVersion: 2, keys: true })[0], 'OK');
      assert.match(mailCryptVerdict({ sampled: 0, encrypted: 0, saveVersion: 0, keys: true })[1], /^off/);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });
});
