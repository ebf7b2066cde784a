// Runs the compiled commands as an admin (or systemd) would, and small helpers for asserting on
// what landed on the loopback Storage Box.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdtemp, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
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
    const p = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

export const backup = (args: string[], env: Record<string, string>, timeoutMs?: number) => runCli(BACKUP_CLI, args, env, timeoutMs);

export async function sha256File(p: string): Promise<string> {
  return createHash('sha256').update(await readFile(p)).digest('hex');
}

/** Every regular file under root: relative path → sha256. */
export async function treeHashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const name of await readdir(join(root, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) out.set(p, await sha256File(join(root, p)));
    }
  };
  await walk('');
  return out;
}

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

/** Runs the daily backup `count` times, a second apart (names have one-second resolution); returns the published names. */
export async function backupsOnBox(sb: { configPath: string; env: Record<string, string>; box: { root: string }; remotePath: string }, count: number): Promise<string[]> {
  for (let i = 0; i < count; i++) {
    if (i) await sleep(1100);
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    if (r.code !== 0) throw new Error(`backup run ${i + 1} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  }
  return publishedOnBox(sb.box.root, sb.remotePath);
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

/**
 * The two answers a Storage Box gives to `sha256sum`: it hashes (one runbook shows it), or it
 * refuses it like any unknown command (exit 8). Verification tests run against both.
 */
export const BOX_HASH_MODES = [
  { name: 'box with sha256sum', noSha256sum: false },
  { name: 'box without sha256sum (rsync --checksum / download)', noSha256sum: true },
] as const;
