// Every change the installer makes goes through here, so --dry-run can print it instead: files
// (written atomically, reported unchanged when they are), folders, symlinks, removals, commands.
import { chmod, cp, lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Exec, RunOptions, RunResult } from '../adapters/exec.js';

export interface Out {
  step(title: string): void;
  ok(line: string): void;
  info(line: string): void;
  warn(line: string): void;
}

export function consoleOut(stream: NodeJS.WritableStream = process.stdout): Out {
  return {
    step: (t) => stream.write(`\n== ${t}\n`),
    ok: (l) => stream.write(`ok    ${l}\n`),
    info: (l) => stream.write(`      ${l}\n`),
    warn: (l) => stream.write(`WARN  ${l}\n`),
  };
}

export const modeText = (m: number) => m.toString(8).padStart(4, '0');

/** Shell-like rendering of a command for messages (not for execution). */
export function commandText(cmd: string, args: string[]): string {
  const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [cmd, ...args].map(q).join(' ');
}

export class Ops {
  /** Folders this install created (deepest last), for uninstall to remove when empty. */
  readonly createdDirs: string[] = [];
  /** Under --dry-run: folders already announced, so each is shown once. */
  private readonly planned = new Set<string>();

  constructor(
    readonly dryRun: boolean,
    private readonly exec: Exec,
    readonly out: Out,
    /** Keys whose values are blanked when a file is shown by --dry-run. */
    private readonly secretKeys: string[] = [],
  ) {}

  async mkdir(path: string, mode: number): Promise<void> {
    const missing: string[] = [];
    for (let p = path; !existsSync(p); p = dirname(p)) missing.unshift(p);
    if (this.dryRun) {
      if (this.planned.has(path)) return;
      this.planned.add(path);
      if (missing.length) this.out.info(`would create folder ${path} (mode ${modeText(mode)})`);
      else if (((await stat(path)).mode & 0o777) !== mode) this.out.info(`would chmod ${modeText(mode)} ${path}`);
      return;
    }
    await mkdir(path, { recursive: true, mode });
    this.createdDirs.push(...missing);
    if (((await stat(path)).mode & 0o777) !== mode) await chmod(path, mode);
  }

  /** Creates a folder (and missing parents) only if it is missing; an existing one keeps its mode. */
  async ensureDir(path: string, mode = 0o755): Promise<void> {
    if (existsSync(path) || this.planned.has(path)) return;
    await this.mkdir(path, mode);
  }

  /** Writes a file atomically; says whether it changed. */
  async writeFile(path: string, content: string, mode: number): Promise<'created' | 'updated' | 'unchanged'> {
    const old = await readFile(path, 'utf8').catch(() => undefined);
    const oldMode = old === undefined ? undefined : (await stat(path)).mode & 0o777;
    const status = old === undefined ? 'created' : old === content && oldMode === mode ? 'unchanged' : 'updated';
    if (this.dryRun) {
      this.out.info(`would write ${path} (mode ${modeText(mode)}${status === 'unchanged' ? ', same as now' : ''}):`);
      for (const line of this.redact(content).replace(/\n$/, '').split('\n')) this.out.info(`  | ${line}`);
      return status;
    }
    if (status === 'unchanged') return status;
    await this.ensureDir(dirname(path));
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
    return status;
  }

  async chmod(path: string, mode: number): Promise<void> {
    if (this.dryRun) return this.out.info(`would chmod ${modeText(mode)} ${path}`);
    await chmod(path, mode);
  }

  /** Creates or repoints a symlink; refuses to replace anything that is not a symlink. */
  async symlink(target: string, path: string): Promise<'created' | 'updated' | 'unchanged' | 'refused'> {
    const st = await lstat(path).catch(() => undefined);
    if (st && !st.isSymbolicLink()) return 'refused';
    const current = st ? await readlink(path) : undefined;
    if (current === target) return 'unchanged';
    if (this.dryRun) {
      this.out.info(`would link ${path} -> ${target}`);
      return st ? 'updated' : 'created';
    }
    await this.ensureDir(dirname(path));
    const tmp = `${path}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(target, tmp);
    await rename(tmp, path);
    return st ? 'updated' : 'created';
  }

  async remove(path: string, what = ''): Promise<boolean> {
    const st = await lstat(path).catch(() => undefined);
    if (!st) return false;
    if (this.dryRun) {
      this.out.info(`would remove ${path}${what ? ` (${what})` : ''}`);
      return true;
    }
    await rm(path, { recursive: true, force: true });
    return true;
  }

  async rename(from: string, to: string): Promise<void> {
    if (this.dryRun) return this.out.info(`would move ${from} to ${to}`);
    await rename(from, to);
  }

  async copy(from: string, to: string, filter?: (src: string) => boolean): Promise<void> {
    if (this.dryRun) return this.out.info(`would copy ${from} to ${to}`);
    await cp(from, to, { recursive: true, force: true, verbatimSymlinks: true, filter: filter ? (src) => filter(src) : undefined });
  }

  /** Runs a command that changes something; --dry-run prints it instead. */
  async run(cmd: string, args: string[], opts: RunOptions): Promise<RunResult | undefined> {
    if (this.dryRun) {
      this.out.info(`would run: ${commandText(cmd, args)}${opts.cwd ? `   (in ${opts.cwd})` : ''}`);
      return undefined;
    }
    return this.exec(cmd, args, opts);
  }

  /** Runs a command that only reads (a check or a probe): also under --dry-run. */
  probe(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
    return this.exec(cmd, args, opts);
  }

  private redact(text: string): string {
    if (!this.secretKeys.length) return text;
    return text
      .split('\n')
      .map((l) => {
        const m = /^(\s*(?:export\s+)?)([A-Z_][A-Z0-9_]*)\s*=\s*(.+)$/.exec(l);
        return m && this.secretKeys.includes(m[2]!) ? `${m[1]}${m[2]}=*** (hidden)` : l;
      })
      .join('\n');
  }
}
