// The Storage Box stand-in, proven with the real ssh, rsync and sftp clients.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rsyncShell, sftpClientArgs, sshClientArgs, startStorageBox, type StorageBox } from '../src/sandbox/storage-box.js';

const REFUSAL = "Command not found. Use 'help' to get a list of available commands.\n";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runProc(cmd: string, args: string[], input?: string | Buffer): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

describe('storage box stand-in', () => {
  let box: StorageBox;
  let tmp: string;
  let local: string;
  let target: string;

  // one multiplexed connection for the whole file, as the tool itself does
  const mux = (): string[] => ['-o', `ControlPath=${path.join(tmp, 'cm')}`];
  const ssh = (command: string, input?: string): Promise<Result> =>
    runProc('ssh', [...sshClientArgs(box), ...mux(), target, command], input);
  const rsync = (...args: string[]): Promise<Result> =>
    runProc('rsync', ['-e', `${rsyncShell(box)} ${mux().join(' ')}`, ...args]);
  const remote = (p: string): string => `${target}:${p}`;
  const ino = (rel: string): { ino: number; nlink: number } => {
    const st = fs.statSync(path.join(box.root, rel));
    return { ino: st.ino, nlink: st.nlink };
  };
  const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  /** The local data uploaded to /home/<name> unless it is there already: a test's own starting point. */
  const uploaded = async (name: string): Promise<void> => {
    if (fs.existsSync(path.join(box.root, name, 'big.bin'))) return;
    const r = await rsync('-rlpt', `${local}/data/`, remote(`/home/${name}/`));
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'storage-box-test-'));
    box = await startStorageBox({ dir: path.join(tmp, 'box'), quotaBytes: 10 * 1024 ** 3 });
    target = `${box.user}@${box.host}`;
    local = path.join(tmp, 'local');
    fs.mkdirSync(path.join(local, 'data', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(local, 'data', 'big.bin'), randomBytes(1024 * 1024));
    fs.writeFileSync(path.join(local, 'data', 'sub', 'hello.txt'), 'hello world\n');
    const m = await runProc('ssh', [...sshClientArgs(box), ...mux(), '-o', 'ControlMaster=yes', '-o', 'ControlPersist=120', target, 'exit']);
    assert.equal(m.code, 0, m.stderr);
  });

  after(async () => {
    if (box) await runProc('ssh', [...mux(), '-O', 'exit', target]);
    await box?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('exposes host, port, keys and a pinned host key', () => {
    assert.equal(box.host, '127.0.0.1');
    assert.ok(box.port > 0);
    assert.match(box.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]+=*$/);
    assert.equal(fs.statSync(box.clientKeyPath).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(box.knownHostsPath, 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${box.port} ssh-ed25519 `));
  });

  it('refuses anything outside the command list with the refusal text and exit 8', async () => {
    const cmds = ['echo hi', 'ls | cat', 'test -f x && echo y', 'FOO=1 ls', 'find .', 'ls > x', 'ls $HOME', 'ls `id`', 'sh -c ls', 'rsync -a x y', ':'];
    const results = await Promise.all(cmds.map((c) => ssh(c)));
    for (const [i, cmd] of cmds.entries()) {
      const r = results[i]!;
      assert.equal(r.code, 8, `${cmd}: exit ${r.code}`);
      assert.equal(r.stdout, REFUSAL, cmd);
      assert.equal(r.stderr, '', cmd);
    }
    const quiet = await ssh('');
    assert.equal(quiet.code, 0);
  });

  it('runs simple commands with quoting and maps /home to the box root', async () => {
    let r = await ssh('mkdir -p a/b');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.statSync(path.join(box.root, 'a', 'b')).isDirectory());
    r = await ssh('ls -1 a');
    assert.deepEqual([r.code, r.stdout], [0, 'b\n']);
    r = await ssh('ls -1 /home/a');
    assert.deepEqual([r.code, r.stdout], [0, 'b\n']);
    r = await ssh(`mkdir '/home/with space' "/home/q\\"uote"`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(box.root, 'with space')));
    assert.ok(fs.existsSync(path.join(box.root, 'q"uote')));
    r = await ssh('pwd');
    assert.deepEqual([r.code, r.stdout], [0, '/home\n']);
    r = await ssh('rmdir /home/with\\ space');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!fs.existsSync(path.join(box.root, 'with space')));
    r = await ssh('help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /sha256sum/);
  });

  it('refuses paths outside the box and never reads them', async () => {
    fs.symlinkSync('/etc', path.join(box.root, 'evil'));
    try {
      const cmds = ['cat ../../etc/passwd', 'cat /etc/passwd', 'cat /home/../../etc/passwd', 'cat evil/passwd', 'ls /', 'ls -l ..', 'cp /etc/passwd x', 'cat a/../../passwd', 'dd if=/etc/passwd of=x'];
      const results = await Promise.all(cmds.map((c) => ssh(c)));
      for (const [i, cmd] of cmds.entries()) {
        const r = results[i]!;
        assert.notEqual(r.code, 0, cmd);
        assert.notEqual(r.code, 8, cmd);
        assert.doesNotMatch(r.stdout, /root:/, cmd);
        assert.notEqual(r.stderr, '', cmd);
      }
      const r = await rsync('-r', remote('/etc/'), path.join(tmp, 'stolen'));
      assert.notEqual(r.code, 0);
      assert.ok(!fs.existsSync(path.join(tmp, 'stolen', 'passwd')));
    } finally {
      fs.unlinkSync(path.join(box.root, 'evil'));
    }
  });

  it('uploads with rsync -rlpt and hashes on the box with sha256sum', async () => {
    const r = await rsync('-rlpt', `${local}/data/`, remote('/home/b1/'));
    assert.equal(r.code, 0, r.stderr);
    const big = fs.readFileSync(path.join(local, 'data', 'big.bin'));
    assert.ok(fs.readFileSync(path.join(box.root, 'b1', 'big.bin')).equals(big));
    const s = await ssh('sha256sum b1/big.bin /home/b1/sub/hello.txt');
    assert.equal(s.code, 0, s.stderr);
    assert.equal(
      s.stdout,
      `${sha256(big)}  b1/big.bin\n${sha256(Buffer.from('hello world\n'))}  /home/b1/sub/hello.txt\n`,
    );
    const list = await rsync('--list-only', '-r', remote('/home/b1/'));
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /sub\/hello\.txt/);
  });

  it('hard-links with --link-dest=/home/<prev>, copies when hard links fail', async () => {
    await uploaded('b1');
    let r = await rsync('-rlpt', '--stats', '--link-dest=/home/b1', `${local}/data/`, remote('/home/b2/'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ino('b2/big.bin').ino, ino('b1/big.bin').ino);
    assert.equal(ino('b2/big.bin').nlink, 2);

    await box.setMode({ hardlinksFail: true });
    try {
      r = await rsync('-rlpt', '--stats', '--link-dest=/home/b1', `${local}/data/`, remote('/home/b3/'));
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(ino('b3/big.bin').ino, ino('b1/big.bin').ino);
      assert.equal(ino('b3/big.bin').nlink, 1);
      assert.equal(ino('b1/big.bin').nlink, 2);
      const sent = Number(/Total bytes sent: ([\d,.]+)/.exec(r.stdout)?.[1]?.replace(/[,.]/g, ''));
      assert.ok(sent < 50_000, `bytes sent ${sent}`);
      assert.ok(fs.readFileSync(path.join(box.root, 'b3', 'big.bin')).equals(fs.readFileSync(path.join(local, 'data', 'big.bin'))));
      const ln = await ssh('ln b1/big.bin b1/again');
      assert.notEqual(ln.code, 0);
    } finally {
      await box.setMode({ hardlinksFail: false });
    }
    const log = await box.commands();
    assert.ok(log.some((c) => c.command.includes('--link-dest /home/b1') || c.command.includes('--link-dest=/home/b1')));
  });

  it('refuses the unconfirmed commands in strict mode', async () => {
    await uploaded('b1');
    await uploaded('b2');
    await uploaded('b3');
    await box.setMode({ strict: true });
    try {
      const cmds = ['mv b3 b4', 'md5sum b1/big.bin', 'chmod 600 b1/big.bin', 'ln -s b1 b5'];
      const results = await Promise.all(cmds.map((c) => ssh(c)));
      for (const [i, cmd] of cmds.entries()) {
        const r = results[i]!;
        assert.deepEqual([r.code, r.stdout, r.stderr], [8, REFUSAL, ''], cmd);
      }
      assert.ok(fs.existsSync(path.join(box.root, 'b3')));
      const r = await ssh('rm -rf b3');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!fs.existsSync(path.join(box.root, 'b3')));
    } finally {
      await box.setMode({ strict: false });
    }
    const r = await ssh('mv b2 b2-moved');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(box.root, 'b2-moved')));
  });

  it('reports the quota with df', async () => {
    await uploaded('b1');
    let r = await ssh('df');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    const [, size, used, avail] = lines[1]!.split(/\s+/);
    assert.equal(Number(size), 10 * 1024 * 1024);
    assert.ok(Number(used) >= 1024, `used ${used}`); // at least the 1 MiB file
    assert.equal(Number(avail), Number(size) - Number(used));
    r = await ssh('df -h');
    assert.equal(r.code, 0);
    assert.match(r.stdout.split('\n')[1]!, /\s10G\s/);
  });

  it('renames with sftp -b and relative paths', async () => {
    await uploaded('d1');
    const r = await runProc('sftp', ['-b', '-', ...sftpClientArgs(box), target], 'rename d1 d1-renamed\n');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(box.root, 'd1-renamed', 'big.bin')));
    assert.ok(!fs.existsSync(path.join(box.root, 'd1')));
  });

  it('corrupts one byte after the next upload, keeping size and mtime, once', async () => {
    await uploaded('b1');
    await box.setMode({ corruptAfterUpload: 'big.bin' });
    const r = await rsync('-rlpt', `${local}/data/`, remote('/home/c1/'));
    assert.equal(r.code, 0, r.stderr);
    const orig = fs.readFileSync(path.join(local, 'data', 'big.bin'));
    const onBox = fs.readFileSync(path.join(box.root, 'c1', 'big.bin'));
    assert.equal(onBox.length, orig.length);
    let diff = 0;
    for (let i = 0; i < orig.length; i++) if (orig[i] !== onBox[i]) diff++;
    assert.equal(diff, 1);
    assert.equal(
      fs.statSync(path.join(box.root, 'c1', 'big.bin')).mtimeMs,
      fs.statSync(path.join(local, 'data', 'big.bin')).mtimeMs,
    );
    assert.equal((await box.readState()).corruptAfterUpload, undefined);
    // the older copy sharing nothing was not touched, and the next upload is clean
    assert.ok(fs.readFileSync(path.join(box.root, 'b1', 'big.bin')).equals(orig));
    const r2 = await rsync('-rlpt', `${local}/data/`, remote('/home/c2/'));
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok(fs.readFileSync(path.join(box.root, 'c2', 'big.bin')).equals(orig));
    // a checksum run over the data notices it, a size+mtime run does not
    const check = await rsync('-rn', '--checksum', '--itemize-changes', `${local}/data/`, remote('/home/c1/'));
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /big\.bin/);
  });

  it('installs a key with install-ssh-key', async () => {
    const key = path.join(tmp, 'second_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const r = await ssh('install-ssh-key', fs.readFileSync(key + '.pub', 'utf8'));
    assert.equal(r.code, 0, r.stderr);
    const args = sshClientArgs(box);
    args[args.indexOf(box.clientKeyPath)] = key;
    const r2 = await runProc('ssh', [...args, target, 'pwd']);
    assert.deepEqual([r2.code, r2.stdout], [0, '/home\n']);
  });

  it('fails when the host key does not match known_hosts', async () => {
    const other = path.join(tmp, 'other_host_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const kh = path.join(tmp, 'wrong_known_hosts');
    fs.writeFileSync(kh, `[127.0.0.1]:${box.port} ${fs.readFileSync(other + '.pub', 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const args = sshClientArgs(box).map((a) => (a === `UserKnownHostsFile=${box.knownHostsPath}` ? `UserKnownHostsFile=${kh}` : a));
    const r = await runProc('ssh', [...args, target, 'pwd']);
    assert.equal(r.code, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /host key|HOST IDENTIFICATION/i);
  });
});
