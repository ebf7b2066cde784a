// Runs the compiled commands as an admin (or systemd) would, and small helpers for asserting on
// what landed on the loopback Storage Box.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '../../src/sandbox/sandbox.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BACKUP_CLI = join(ROOT, 'dist/src/cli/backup-to-hetzner.js');
export const RESTORE_CLI = join(ROOT, 'dist/src/cli/restore-from-hetzner.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(cli: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...(cli === BACKUP_CLI ? withRunClock(args, env) : env) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cli} ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/**
 * Backup names have one-second resolution: two runs in one second would want the same name. Each
 * `run` a test starts gets the tool's clock (MAILCOW_BACKUP_TEST_CLOCK) one second further ahead of
 * the real one than the previous run's, so its backup is named at least a second later without
 * waiting. (Run k names at real time + k s or later; run k-1 ended before run k started, at real
 * time + (k-1) s.) A clock the caller sets wins.
 */
let clockAhead = 0;
export function nextRunClock(): Date {
  clockAhead += 1000;
  return new Date(Date.now() + clockAhead);
}
/** `now` of an in-process run on the same distinct clock as the CLI runs' (see nextRunClock). */
export function inProcessClock(): () => Date {
  const delta = nextRunClock().getTime() - Date.now();
  return () => new Date(Date.now() + delta);
}
/** The environment of a backup-to-hetzner process: with `run`, the next distinct clock (see nextRunClock). */
export const withRunClock = (args: string[], env: Record<string, string>) => (args[0] === 'run' ? { MAILCOW_BACKUP_TEST_CLOCK: nextRunClock().toISOString(), ...env } : env);

export const backup = (args: string[], env: Record<string, string>, timeoutMs?: number) => runCli(BACKUP_CLI, args, env, timeoutMs);

export interface Spawned {
  p: ChildProcess;
  stderr: () => string;
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** backup-to-hetzner in a process group of its own (to be killed as systemd kills a unit), watched as it runs. */
export function spawnBackup(args: string[], env: Record<string, string>): Spawned {
  const t0 = Date.now();
  const p = spawn(process.execPath, [BACKUP_CLI, ...args], {
    env: { ...process.env, ...withRunClock(args, env) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (d: Buffer) => {
    err += d;
    for (const w of [...waiters]) if (w.re.test(err)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  p.stderr!.on('data', onData);
  p.stdout!.on('data', onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - t0 })));
  return {
    p,
    stderr: () => err,
    exit,
    waitFor: (re, ms = 60_000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(err)) return resolve();
        const t = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms:\n${err.slice(-3000)}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
        void exit.then(() => setTimeout(() => reject(new Error(`exited before ${re}:\n${err.slice(-3000)}`)), 50));
      }),
  };
}

export { sha256File, treeHashes } from '../../src/sandbox/tree-hashes.js';

export async function publishedOnBox(boxRoot: string, remotePath: string): Promise<string[]> {
  const names = await readdir(join(boxRoot, remotePath)).catch(() => [] as string[]);
  return names.filter((n) => /^mailcow-\d{4}(-\d{2}){5}$/.test(n)).sort();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Flips one byte in the middle of a file on the box, size and mtime kept, breaking its hard links
 * first so other backups keep theirs. Flipping again puts the byte back.
 */
export async function flipByte(file: string): Promise<void> {
  const st = await stat(file);
  await copyFile(file, `${file}.tmp`);
  await rename(`${file}.tmp`, file);
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    const off = Math.floor(st.size / 2);
    await fh.read(b, 0, 1, off);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, off);
  } finally {
    await fh.close();
  }
}

/** Runs the daily backup `count` times (each named a second or more after the last); returns the published names. */
export async function backupsOnBox(sb: { configPath: string; env: Record<string, string>; box: { root: string }; remotePath: string }, count: number): Promise<string[]> {
  for (let i = 0; i < count; i++) {
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    if (r.code !== 0) throw new Error(`backup run ${i + 1} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  }
  return publishedOnBox(sb.box.root, sb.remotePath);
}

/**
 * At least `n` backups published on the box, running the daily backup as many times as are
 * missing: a test's own starting point, whichever tests of its file ran (or failed) before it.
 */
export async function backupsAtLeast(sb: { configPath: string; env: Record<string, string>; box: { root: string }; remotePath: string }, n: number): Promise<string[]> {
  const have = (await publishedOnBox(sb.box.root, sb.remotePath)).length;
  return have >= n ? publishedOnBox(sb.box.root, sb.remotePath) : backupsOnBox(sb, n - have).then(() => publishedOnBox(sb.box.root, sb.remotePath));
}

/** A strict-mode sandbox in a fresh temp folder with `count` backups published on its box. */
export async function sandboxWithBackups(prefix: string, opts: { mailBytes: number; seed: number }, count: number): Promise<{ sb: Sandbox; dir: string; boxBackups: string; names: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const sb = await createSandbox({ dir, ...opts, strict: true });
  const names = await backupsOnBox(sb, count);
  if (names.length !== count) throw new Error(`${names.length} backups on the box, wanted ${count}`);
  return { sb, dir, boxBackups: join(sb.box.root, sb.remotePath), names };
}

export async function removeSandbox(sb: Sandbox | undefined, dir: string | undefined): Promise<void> {
  await sb?.stop();
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
}

/** A copy of the sandbox's config that pins another host key (the box looks replaced); returns it and that key's .pub file. */
export async function configWithOtherHostKey(sb: Sandbox, dir: string): Promise<{ config: string; pinnedPub: string }> {
  const other = join(dir, 'other_known_hosts');
  const key = join(dir, 'otherkey');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const pub = (await readFile(`${key}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(other, `[127.0.0.1]:${sb.box.port} ${pub}\n`);
  const config = join(dir, 'wrong-key.env');
  await writeFile(config, (await readFile(sb.configPath, 'utf8')).replace(/^SSH_KNOWN_HOSTS=.*$/m, `SSH_KNOWN_HOSTS=${other}`), { mode: 0o600 });
  return { config, pinnedPub: `${key}.pub` };
}

/**
 * The two answers a Storage Box gives to `sha256sum`: it hashes (one runbook shows it), or it
 * refuses it like any unknown command (exit 8). Verification tests run against both.
 */
export const BOX_HASH_MODES = [
  { name: 'box with sha256sum', noSha256sum: false },
  { name: 'box without sha256sum (rsync --checksum / download)', noSha256sum: true },
] as const;

/** Two trees of `treeHashes` are equal; the first few missing, extra and differing paths say how not. */
export function assertSameTree(actual: Map<string, string>, expected: Map<string, string>, what: string): void {
  const missing = [...expected.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !expected.has(k));
  const differ = [...expected.keys()].filter((k) => actual.has(k) && actual.get(k) !== expected.get(k));
  assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), differ: differ.slice(0, 5) }, { missing: [], extra: [], differ: [] }, what);
}
