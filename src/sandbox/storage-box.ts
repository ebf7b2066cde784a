// A Hetzner Storage Box stand-in for tests, the demo and the benchmark: a real sshd on 127.0.0.1
// (free port, own host key, key-only, no PAM) whose every login runs box-shell.js as ForceCommand.
// See the shared reference "storage-box.md", "The stand-in the tests must build".

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface StorageBoxOptions {
  /** A fresh folder the box owns (created if missing): keys, config, state and the home folder. */
  dir: string;
  strict?: boolean;
  hardlinksFail?: boolean;
  noSha256sum?: boolean;
  quotaBytes?: number;
}

/** Fields of the state file box-shell.js re-reads on every login. */
export interface StorageBoxMode {
  strict?: boolean;
  hardlinksFail?: boolean;
  /** sftp refuses hardlink@openssh.com (its `ln`); rsync's --link-dest still works. */
  sftpHardlinkRefused?: boolean;
  quotaBytes?: number;
  /** After the next rsync upload, flip one byte of the first changed file whose path contains this. */
  corruptAfterUpload?: string;
  /** The box's rsync sends at most this many KiB/s (a slow link to a restoring or standby host). */
  sendKBps?: number;
  /** The shell refuses sha256sum ("Command not found…", exit 8), as a box without it would. */
  noSha256sum?: boolean;
  /** JSON-lines log of every command: {"time","command","exit"}. */
  log?: string;
}

export interface StorageBoxState extends StorageBoxMode {
  root: string;
}

export interface StorageBox {
  host: '127.0.0.1';
  port: number;
  user: string;
  /** The real folder that is the box's home (`/home` as the box shows it). */
  root: string;
  clientKeyPath: string;
  knownHostsPath: string;
  hostKeyFingerprint: string;
  statePath: string;
  /** Log of every command the box received (JSON lines: time, command, exit). */
  logPath: string;
  /** sshd's pid: the CPU of finished logins (box-shell, the box's rsync) adds to its children's time. */
  sshdPid: number;
  /**
   * Takes a snapshot of the box's home now, as Hetzner's automatic snapshots do: a read-only copy
   * at `.zfs/snapshot/<name>/`, named like Hetzner's (`2026-12-05T03-00-00`, UTC, from `at`).
   */
  takeSnapshot(at?: Date): Promise<string>;
  /** Merge these fields into the state file (undefined removes a field). */
  setMode(mode: Partial<StorageBoxMode>): Promise<void>;
  /** Current state file contents. */
  readState(): Promise<StorageBoxState>;
  /** Parsed command log. */
  /** Every command of the box's shell: started, finished (time), its line and exit status. */
  commands(): Promise<{ started: string; time: string; command: string; exit: number }[]>;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
const DEFAULT_QUOTA = 1024 ** 4; // 1 TiB, like a BX11

export const boxShellPath = (): string => fileURLToPath(new URL('./box-shell.js', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A word quoted for sh. */
export const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

async function writeState(file: string, st: StorageBoxState): Promise<void> {
  const tmp = `${file}.tmp${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(st, null, 2) + '\n');
  await fs.rename(tmp, file);
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) {
      try {
        c.kill('SIGTERM');
      } catch {
        /* already gone */
      }
    }
  });
}

export async function startStorageBox(opts: StorageBoxOptions): Promise<StorageBox> {
  const dir = path.resolve(opts.dir);
  await fs.mkdir(dir, { recursive: true });
  const root = path.join(dir, 'home');
  await fs.mkdir(root, { recursive: true });
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKeyPath = path.join(dir, 'client_ed25519');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const statePath = path.join(dir, 'box-state.json');
  const logPath = path.join(dir, 'box-commands.log');
  const knownHostsPath = path.join(dir, 'known_hosts');
  const configPath = path.join(dir, 'sshd_config');
  const pidFile = path.join(dir, 'sshd.pid');

  for (const k of [hostKey, clientKeyPath]) {
    await fs.rm(k, { force: true });
    await fs.rm(k + '.pub', { force: true });
  }
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'storage-box-stand-in', '-f', hostKey]);
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'storage-box-client', '-f', clientKeyPath]);
  await fs.chmod(clientKeyPath, 0o600);
  await fs.chmod(hostKey, 0o600);
  const clientPub = (await fs.readFile(clientKeyPath + '.pub', 'utf8')).trim();
  await fs.writeFile(authorizedKeys, clientPub + '\n', { mode: 0o600 });
  const hostPub = (await fs.readFile(hostKey + '.pub', 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const fp = await execFileP('ssh-keygen', ['-l', '-E', 'sha256', '-f', hostKey + '.pub']);
  const hostKeyFingerprint = /SHA256:[A-Za-z0-9+/=]+/.exec(fp.stdout)?.[0];
  if (!hostKeyFingerprint) throw new Error(`cannot read the host key fingerprint: ${fp.stdout}`);

  await writeState(statePath, {
    root,
    strict: opts.strict ?? false,
    hardlinksFail: opts.hardlinksFail ?? false,
    noSha256sum: opts.noSha256sum ?? false,
    quotaBytes: opts.quotaBytes ?? DEFAULT_QUOTA,
    log: logPath,
  });

  const user = os.userInfo().username;
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = [
      `Port ${port}`,
      `ListenAddress 127.0.0.1`,
      `HostKey ${hostKey}`,
      `PidFile ${pidFile}`,
      `AuthorizedKeysFile ${authorizedKeys} ${path.join(root, '.ssh', 'authorized_keys')}`,
      `PubkeyAuthentication yes`,
      `AuthenticationMethods publickey`,
      `PasswordAuthentication no`,
      `KbdInteractiveAuthentication no`,
      `UsePAM no`,
      `StrictModes no`,
      `PermitRootLogin prohibit-password`,
      `AllowUsers ${user}`,
      `PermitUserEnvironment no`,
      // sshd runs the forced command through the user's shell, and Debian's bash sources ~/.bashrc
      // for ssh sessions at SHLVL < 2: the host's own set-up (pyenv, nvm…) would slow every box
      // command and could print into its answers, which the real box never does.
      `SetEnv SHLVL=1`,
      `AllowTcpForwarding no`,
      `AllowStreamLocalForwarding no`,
      `AllowAgentForwarding no`,
      `X11Forwarding no`,
      `PermitTunnel no`,
      `GatewayPorts no`,
      `PrintMotd no`,
      `PrintLastLog no`,
      `UseDNS no`,
      `MaxSessions 20`,
      `MaxStartups 30`,
      `LogLevel ERROR`,
      `Subsystem sftp /usr/lib/openssh/sftp-server`,
      `ForceCommand ${sq(process.execPath)} ${sq(boxShellPath())} ${sq(statePath)}`,
      '',
    ].join('\n');
    await fs.writeFile(configPath, config);
    await fs.writeFile(knownHostsPath, `[127.0.0.1]:${port} ${hostPub}\n`);

    const child = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exited = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const exitP = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exited = true;
        running.delete(child);
        resolve();
      });
      child.once('error', (e) => {
        stderr += String(e.message);
        exited = true;
        resolve();
      });
    });
    running.add(child);
    installExitHook();

    const deadline = Date.now() + 10_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await canConnect(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up || exited) {
      if (!exited) {
        child.kill('SIGKILL');
        await exitP;
      }
      lastErr = stderr.trim() || (exited ? 'sshd exited early' : 'sshd did not accept connections within 10 s');
      if (/Address already in use/i.test(stderr)) continue;
      throw new Error(`storage box stand-in: ${lastErr}`);
    }
    // Stop logging into memory forever: keep the stream flowing but bounded.
    const readState = async (): Promise<StorageBoxState> =>
      JSON.parse(await fs.readFile(statePath, 'utf8')) as StorageBoxState;
    const box: StorageBox = {
      host: '127.0.0.1',
      port,
      user,
      root,
      clientKeyPath,
      knownHostsPath,
      hostKeyFingerprint,
      statePath,
      logPath,
      sshdPid: child.pid!,
      async setMode(mode) {
        const cur = await readState();
        const next: Record<string, unknown> = { ...cur, ...mode, root: cur.root };
        for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
        await writeState(statePath, next as unknown as StorageBoxState);
      },
      readState,
      takeSnapshot: (at) => takeSnapshot(root, at ?? new Date()),
      async commands() {
        let text = '';
        try {
          text = await fs.readFile(logPath, 'utf8');
        } catch {
          return [];
        }
        return text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { started: string; time: string; command: string; exit: number });
      },
      async stop() {
        // Snapshot copies are read-only: a non-root caller could not remove the sandbox otherwise.
        await execFileP('chmod', ['-R', 'u+w', path.join(root, '.zfs')]).catch(() => undefined);
        if (!exited) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exitP;
          clearTimeout(t);
        }
      },
    };
    return box;
  }
  throw new Error(`storage box stand-in: ${lastErr}`);
}

/** Hetzner's snapshot name for a time: `YYYY-MM-DDTHH-MM-SS` in UTC. */
export const snapshotNameFor = (d: Date): string => d.toISOString().slice(0, 19).replace(/:/g, '-');

async function takeSnapshot(root: string, at: Date): Promise<string> {
  const name = snapshotNameFor(at);
  const zfs = path.join(root, '.zfs');
  const dest = path.join(zfs, 'snapshot', name);
  await execFileP('chmod', ['-R', 'u+w', zfs]).catch(() => undefined);
  await fs.mkdir(dest, { recursive: true });
  // A copy, not hard links: the live files must stay writable while the snapshot's are not.
  await execFileP('rsync', ['-a', '--exclude=/.zfs', `${root}/`, `${dest}/`]);
  await execFileP('chmod', ['-R', 'a-w', zfs]);
  return name;
}

/** The ssh options a client needs to reach the box (ssh syntax: `-p PORT`). */
export function sshClientArgs(box: StorageBox): string[] {
  return [
    '-p', String(box.port),
    '-i', box.clientKeyPath,
    '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${box.knownHostsPath}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'IdentitiesOnly=yes',
  ];
}

/** The same for sftp/scp (`-P PORT`). */
export function sftpClientArgs(box: StorageBox): string[] {
  const a = sshClientArgs(box);
  a[0] = '-P';
  return a;
}

/** A value for `rsync -e` (no spaces in the paths assumed; rsync splits it on whitespace). */
export function rsyncShell(box: StorageBox): string {
  return ['ssh', ...sshClientArgs(box)].join(' ');
}

/** `user@127.0.0.1` */
export const boxTarget = (box: StorageBox): string => `${box.user}@${box.host}`;
