// Small process helpers for the benchmark: run a command, run it under GNU time.
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
}

export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string; allowFail?: boolean } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 4 << 20) stdout += d;
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 1 << 20) stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      const r = { code: code ?? 1, stdout, stderr, wallMs: performance.now() - t0 };
      if (r.code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${stderr.slice(-2000)}`));
      else resolve(r);
    });
    if (opts.input !== undefined) {
      p.stdin!.on('error', () => undefined);
      p.stdin!.end(opts.input);
    }
  });
}

/** What GNU time reports: %e %U %S %M (max RSS of the largest single process, KiB). */
export interface Timed extends Ran {
  wallS: number;
  userS: number;
  sysS: number;
  maxRssKiB: number;
}

let seq = 0;
export async function timed(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<Timed> {
  const f = join(tmpdir(), `mcbench-time-${process.pid}-${seq++}`);
  const r = await run('/usr/bin/time', ['-f', '%e %U %S %M', '-o', f, cmd, ...args], opts);
  const [e, u, s, m] = (await readFile(f, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number, number];
  await rm(f, { force: true });
  return { ...r, wallS: e, userS: u, sysS: s, maxRssKiB: m };
}

/** `du -sk` of folders in one invocation (hard links counted once across all of them). */
export async function duBytes(...paths: string[]): Promise<number> {
  const r = await run('du', ['-skc', ...paths]);
  const total = r.stdout.trim().split('\n').pop()!.split(/\s+/)[0]!;
  return Number(total) * 1024;
}

export async function version(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await run(cmd, args, { allowFail: true });
    return (r.stdout || r.stderr).trim().split('\n')[0] ?? '';
  } catch {
    return 'missing';
  }
}
