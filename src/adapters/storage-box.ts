// Talks to the Storage Box: its restricted shell (one quoted command per ssh call), rsync for
// listing and transfer, and SFTP for the one thing the shell may not do (rename). All over one
// master connection per run, with the host key checked against the pinned file.
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isUserError, UserError } from '../errors.js';
import { batchPaths, boxCommand, REFUSAL_EXIT, REFUSAL_TEXT, type VerifyMethod } from '../plan/box-command.js';
import { parseChecksumLine } from '../plan/manifest.js';
import {
  masterControlArgs,
  masterStartArgs,
  parseListOnly,
  remoteSpec,
  rsyncRemoteShell,
  sftpArgs,
  sshCommandArgs,
  type BoxTarget,
} from '../plan/transport-args.js';
import { forEachLimit, hashEach } from './hash.js';
import { pinnedFingerprints } from './host-key.js';
import { spawnBackground, type Background, type Exec, type RunOptions, type RunResult } from './exec.js';
import type { Logger } from './logger.js';

/**
 * sha256sum calls in flight at once: sessions of the one ssh master (sshd's MaxSessions is 10,
 * and a Storage Box allows 10 connections; others may be in use by rsync or sftp).
 */
export const BOX_HASH_CALLS = 4;

export interface BoxEntry {
  name: string;
  type: 'dir' | 'file' | 'other';
  size: number;
  mtime: string;
}

export interface BoxUsage {
  sizeBytes: number;
  usedBytes: number;
  availableBytes: number;
}

export class StorageBox {
  private controlDir?: string;
  private master?: Background;
  private method?: Promise<VerifyMethod>;
  constructor(
    readonly target: BoxTarget,
    private readonly exec: Exec,
    private readonly log: Logger,
  ) {}

  /** Opens the run's shared connection; explains host-key and login failures in one line. */
  async connect(): Promise<void> {
    this.controlDir = await mkdtemp(join(tmpdir(), 'mcb-'));
    this.target.controlPath = join(this.controlDir, 'c');
    const master = await spawnBackground('ssh', masterStartArgs(this.target));
    this.master = master;
    const deadline = Date.now() + (this.target.connectTimeout + 15) * 1000;
    for (;;) {
      if (!master.running()) {
        const { tail } = await master.exited;
        this.target.controlPath = undefined;
        const expected = await pinnedFingerprints(this.exec, this.target.knownHosts, this.target.host, this.target.port).catch(() => []);
        // ssh's own lines only where they add to ours: for a changed host key its "remove with
        // ssh-keygen -R" would contradict the one advice we give (re-pin with the installer).
        const stderr = tail.join('\n');
        throw new UserError('preflight', explainSshFailure(stderr, this.target, expected), HOST_KEY_FAILURE.test(stderr) ? [] : tail.slice(-5));
      }
      const ok = await this.exec('ssh', masterControlArgs(this.target, 'check'), { what: 'ssh -O check', okCodes: [0, 255], timeoutMs: 10_000 }).then((r) => r.exitCode === 0);
      if (ok) return;
      if (Date.now() > deadline) {
        await master.stop();
        this.target.controlPath = undefined;
        throw new UserError('preflight', `the Storage Box ${this.target.user}@${this.target.host}:${this.target.port} did not complete the SSH login within ${this.target.connectTimeout + 15} s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    if (this.target.controlPath && this.master?.running()) {
      await this.exec('ssh', masterControlArgs(this.target, 'exit'), { what: 'ssh -O exit', okCodes: [0, 255], timeoutMs: 10_000 }).catch(() => undefined);
    }
    await this.master?.stop();
    this.master = undefined;
    this.method = undefined;
    this.target.controlPath = undefined;
    if (this.controlDir) await rm(this.controlDir, { recursive: true, force: true });
  }

  /** One command in the box's shell. A refusal (exit 8, text on stdout) is an error naming it. */
  async shell(words: string[], opts: Partial<RunOptions> = {}): Promise<RunResult> {
    const command = boxCommand(words);
    const res = await this.exec('ssh', sshCommandArgs(this.target, command), {
      what: `the Storage Box command '${words[0]}'`,
      capture: true,
      timeoutMs: 600_000,
      ...opts,
      okCodes: [0, ...(opts.okCodes ?? []), REFUSAL_EXIT],
    });
    if (res.exitCode === REFUSAL_EXIT || res.stdout.includes(REFUSAL_TEXT)) {
      throw new UserError(opts.errorKind ?? 'failed', `the Storage Box refused '${words[0]}' (exit ${res.exitCode}: "${REFUSAL_TEXT}"); its shell no longer offers this command`);
    }
    return res;
  }

  /** Whether the box's shell accepts a command: used by `check` to probe before relying on it. */
  async accepts(words: string[]): Promise<boolean> {
    try {
      await this.shell(words, { okCodes: [1, 2] });
      return true;
    } catch (e) {
      if (e instanceof UserError && /refused/.test(e.message)) return false;
      throw e;
    }
  }

  /** Lists a folder with rsync (no shell command, sizes and times included). Missing: []. */
  async list(dir: string): Promise<BoxEntry[]> {
    return this.listing(dir, []);
  }

  /**
   * Everything under `dir` in one call (`rsync --list-only -r`), `name` being the path below
   * `dir`; `exclude` are rsync patterns (`/vmail/`). One login instead of one per folder.
   */
  async listTree(dir: string, exclude: string[] = []): Promise<BoxEntry[]> {
    return (await this.listing(dir, ['-r', ...exclude.map((x) => `--exclude=${x}`)])).filter((e) => e.name !== '.');
  }

  private async listing(dir: string, extra: string[]): Promise<BoxEntry[]> {
    const entries: BoxEntry[] = [];
    let missing = false;
    await this.exec('rsync', ['--list-only', ...extra, '-e', rsyncRemoteShell(this.target), remoteSpec(this.target, `${dir}/`)], {
      what: `listing ${dir} on the Storage Box`,
      okCodes: [0, 23],
      timeoutMs: 300_000,
      onLine: (line, stream) => {
        if (stream === 'stderr' && /No such file or directory/.test(line)) missing = true;
        const e = parseListOnly(line);
        if (e && e.name !== '.') entries.push({ name: e.name, type: e.type, size: e.size, mtime: e.mtime });
      },
    }).then((r) => {
      if (r.exitCode === 23 && !missing) throw new UserError('failed', `listing ${dir} on the Storage Box failed: ${r.tail.slice(-1)[0] ?? ''}`, r.tail);
    });
    return entries;
  }

  async mkdirp(path: string): Promise<void> {
    await this.shell(['mkdir', '-p', path]);
  }

  async removeTree(path: string): Promise<void> {
    await this.shell(['rm', '-rf', path]);
  }

  /**
   * The box hashes its own files; paths it cannot read are simply absent from the result. Up to
   * BOX_HASH_CALLS calls at once over the master connection: one at a time, a first backup of
   * 357k files was 1,800 round trips and 6+ minutes, the box's disks and cores idle between them.
   */
  async sha256(paths: string[], onBatch?: (done: number) => void, calls = BOX_HASH_CALLS): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let done = 0;
    await forEachLimit(batchPaths(paths), calls, async (batch) => {
      const res = await this.shell(['sha256sum', '--', ...batch], { okCodes: [1], tailLines: 5 });
      for (const line of res.stdout.split('\n')) {
        const parsed = parseChecksumLine(line);
        if (parsed) out.set(parsed.path, parsed.hash);
      }
      done += batch.length;
      onBatch?.(done);
    });
    return out;
  }

  /**
   * Whether the box hashes its own files (sha256sum) or verification falls back to rsync: one
   * public runbook shows sha256sum on a real box, so it is probed once per connection, not assumed.
   */
  verifyMethod(): Promise<VerifyMethod> {
    this.method ??= this.accepts(['sha256sum', '--', '.mcb-sha256sum-probe']).then((ok) => (ok ? 'sha256sum' : 'rsync-checksum'));
    return this.method;
  }

  /**
   * Fetches exactly `paths` (relative to `base`) with rsync into `into` and hashes them here:
   * the box's rsync reads the bytes, rsync's own checksum guards the wire. Files the box lacks are
   * absent from the result. Costs their size in bandwidth.
   */
  async downloadHashes(base: string, paths: string[], into: string, timeoutSec: number): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (paths.length === 0) return out;
    try {
      const present = await this.download(base, paths, into, timeoutSec, 'to hash them here');
      await hashEach(present, (p) => ({ abs: join(into, p) }), (p, h) => void (h && out.set(p, h.hash)));
    } finally {
      await rm(into, { recursive: true, force: true });
    }
    return out;
  }

  /**
   * Fetches exactly `paths` (relative to `base`) into `into` with one rsync call; returns those
   * that arrived (a path the box lacks is left out, not an error). The caller removes `into`.
   */
  async download(base: string, paths: string[], into: string, timeoutSec: number, why: string): Promise<string[]> {
    if (paths.length === 0) return [];
    await mkdir(into, { recursive: true, mode: 0o700 });
    const list = `${into}.list`;
    await writeFile(list, paths.map((p) => `${p}\0`).join(''), { mode: 0o600 });
    try {
      await this.exec('rsync', ['-t', '--files-from', list, '--from0', '--timeout', String(timeoutSec), '-e', rsyncRemoteShell(this.target), remoteSpec(this.target, `${base}/`), `${into}/`], {
        what: `downloading ${paths.length} file(s) from the Storage Box ${why}`,
        okCodes: [0, 23, 24],
        timeoutMs: undefined,
      });
    } finally {
      await rm(list, { force: true });
    }
    const present: string[] = [];
    for (const p of paths) if ((await lstat(join(into, p)).catch(() => undefined))?.isFile()) present.push(p);
    return present;
  }

  /** `du -sk` over several folders at once: hard links are counted once, for the first folder. */
  async duKiB(paths: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (paths.length === 0) return out;
    const res = await this.shell(['du', '-sk', ...paths], { okCodes: [1] });
    for (const line of res.stdout.split('\n')) {
      const m = /^(\d+)\s+(.+)$/.exec(line);
      if (m) out.set(m[2]!, Number(m[1]));
    }
    return out;
  }

  /** Hard-link counts from `ls -l` (the column after the mode). */
  async linkCounts(paths: string[]): Promise<number[]> {
    if (paths.length === 0) return [];
    const res = await this.shell(['ls', '-ld', '--', ...paths], { okCodes: [1, 2] });
    return res.stdout
      .split('\n')
      .map((l) => /^[-dlrwxsStT]{10}\S*\s+(\d+)\s/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]));
  }

  async usage(): Promise<BoxUsage | undefined> {
    const res = await this.shell(['df'], { okCodes: [1] });
    const last = res.stdout.trim().split('\n').slice(-1)[0] ?? '';
    const nums = last.split(/\s+/).filter((w) => /^\d+$/.test(w)).map(Number);
    if (nums.length < 3) return undefined;
    return { sizeBytes: nums[0]! * 1024, usedBytes: nums[1]! * 1024, availableBytes: nums[2]! * 1024 };
  }

  /**
   * `cp -al FROM TO`: a copy of a tree whose files are hard links to FROM's. The box lists `cp`
   * in its own help, but its `-a -l` flags are not confirmed on real boxes: a failure is returned
   * (its last line), not thrown, and the caller goes the way that does not need it.
   */
  async copyLinked(from: string, to: string): Promise<string | undefined> {
    try {
      const r = await this.shell(['cp', '-al', from, to], { okCodes: [1, 64], timeoutMs: 3_600_000, tailLines: 5 });
      if (r.exitCode === 0) return undefined;
      return r.tail.filter((l) => l.trim()).slice(-1)[0] ?? `cp exited with ${r.exitCode}`;
    } catch (e) {
      if (isUserError(e) && e.kind === 'interrupted') throw e;
      return (e as Error).message;
    }
  }

  /** Atomic publish: SFTP rename (certain on every box; the shell's mv is not). */
  async rename(from: string, to: string): Promise<void> {
    const q = (p: string) => `"${p.replace(/(["\\])/g, '\\$1')}"`;
    await this.exec('sftp', sftpArgs(this.target), {
      what: `renaming ${from} to ${to} on the Storage Box (sftp)`,
      input: `rename ${q(from)} ${q(to)}\n`,
      timeoutMs: 120_000,
    });
  }

  /**
   * Hard links on the box through SFTP's `ln` (OpenSSH's hardlink@openssh.com; the shell's `ln`
   * is unconfirmed). Creates the folders `dirs` first (parents before children). The first link
   * goes alone: if the box refuses it, nothing else is tried and `refused` is true. After that a
   * link that fails is skipped (rsync then sends that file as usual, which the caller sees).
   */
  async hardLinks(dirs: string[], all: { existing: string; link: string }[]): Promise<{ refused: boolean }> {
    // One batch line per command: a name with a line break could smuggle in another command.
    // Such files are simply sent by rsync (linking is only a saving).
    const plain = (p: string) => !/[\x00-\x1f\x7f]/.test(p);
    const links = all.filter((l) => plain(l.existing) && plain(l.link));
    dirs = dirs.filter(plain);
    if (links.length === 0) return { refused: false };
    const q = (p: string) => `"${p.replace(/(["\\])/g, '\\$1')}"`;
    const batch = async (lines: string[], what: string) =>
      this.exec('sftp', sftpArgs(this.target), { what, input: lines.join('\n') + '\n', okCodes: [0, 1], timeoutMs: 600_000, tailLines: 20 });
    const [first, ...rest] = links;
    // In a batch sftp stops at the first failing command without '-': a refused first link ends
    // the session before any other is tried, so the probe and the first 5,000 share one login.
    const line = (l: { existing: string; link: string }) => `-ln ${q(l.existing)} ${q(l.link)}`;
    const probe = await batch([...dirs.map((d) => `-mkdir ${q(d)}`), `ln ${q(first!.existing)} ${q(first!.link)}`, ...rest.slice(0, 5000).map(line)], 'linking renamed files on the Storage Box (sftp ln)');
    if (probe.exitCode !== 0) return { refused: true };
    for (let i = 5000; i < rest.length; i += 5000) await batch(rest.slice(i, i + 5000).map(line), 'linking renamed files on the Storage Box (sftp ln)');
    return { refused: false };
  }

  /** Uploads a small local file to a path on the box. */
  async putFile(localPath: string, remotePath: string): Promise<void> {
    await this.exec('rsync', ['-lpt', '--timeout=300', '-e', rsyncRemoteShell(this.target), localPath, remoteSpec(this.target, remotePath)], {
      what: `uploading ${remotePath}`,
      timeoutMs: 600_000,
    });
  }

  /** Reads a small file from the box with rsync (no shell redirection needed). */
  async getFile(remotePath: string, localPath: string): Promise<boolean> {
    const res = await this.exec('rsync', ['-t', '--timeout=300', '-e', rsyncRemoteShell(this.target), remoteSpec(this.target, remotePath), localPath], {
      what: `downloading ${remotePath}`,
      okCodes: [0, 23],
      timeoutMs: 600_000,
    });
    return res.exitCode === 0;
  }

  /** Reads a small folder from the box (rsync); false when it does not exist. */
  async getDir(remoteDir: string, localDir: string): Promise<boolean> {
    const res = await this.exec('rsync', ['-rt', '--timeout=300', '-e', rsyncRemoteShell(this.target), remoteSpec(this.target, `${remoteDir}/`), `${localDir}/`], {
      what: `downloading ${remoteDir}`,
      okCodes: [0, 23],
      timeoutMs: 600_000,
    });
    return res.exitCode === 0;
  }

  get logger(): Logger {
    return this.log;
  }
}

const HOST_KEY_FAILURE = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|No .* host key is known/i;

/** ssh's stderr turned into the one line an admin needs. */
export function explainSshFailure(stderr: string, t: BoxTarget, expected: string[] = []): string {
  const where = `${t.user}@${t.host}:${t.port}`;
  if (HOST_KEY_FAILURE.test(stderr)) {
    const seen = /(SHA256:[A-Za-z0-9+/=]+)/.exec(stderr)?.[1];
    const pinned = expected.length ? `; pinned: ${expected.join(', ')}` : `; nothing is pinned for [${t.host}]:${t.port}`;
    return `the Storage Box ${where} presented a host key that is not pinned in ${t.knownHosts} (${seen ? `it sent ${seen}` : 'ssh did not print its fingerprint'}${pinned}); if the box really changed, re-pin it with the installer (install.js --yes), otherwise someone may be intercepting the connection`;
  }
  if (/Permission denied/i.test(stderr)) return `the Storage Box ${where} refused the key ${t.keyPath}; install it with: ssh -p ${t.port} ${t.user}@${t.host} install-ssh-key < ${t.keyPath}.pub`;
  if (/Connection refused/i.test(stderr)) return `the Storage Box ${where} refused the connection; check HETZNER_HOST and HETZNER_PORT (rsync needs port 23)`;
  if (/timed out|Connection timed out/i.test(stderr)) return `the Storage Box ${where} did not answer within the connect timeout; check the network and HETZNER_HOST`;
  if (/Could not resolve hostname/i.test(stderr)) return `the Storage Box host ${t.host} cannot be resolved; check HETZNER_HOST`;
  if (/no such identity|Identity file .* not accessible|No such file/i.test(stderr)) return `the SSH key ${t.keyPath} cannot be read; check SSH_KEY_PATH`;
  const last = stderr.trim().split('\n').slice(-1)[0] || 'no message';
  return `cannot connect to the Storage Box ${where}: ${last}`;
}
