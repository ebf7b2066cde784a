// The dump: mailcow's own script for the archive components, into a fresh folder of this run.
// vmail is not dumped at all: it goes to the box as a file tree, straight from its volume.
import { copyFile, mkdir, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import { runMailcowBackup, type DumpResult } from '../adapters/mailcow.js';
import { backupNameFor } from '../plan/names.js';
import type { RunContext } from './context.js';
import type { Preflight } from './preflight.js';

export const RUN_DIR_PREFIX = 'run-';

/** TEMP_BACKUP_DIR is 0700; the run's location inside it is 0755 as mailcow's script demands. */
export async function makeRunDir(ctx: RunContext): Promise<string> {
  await mkdir(ctx.config.TEMP_BACKUP_DIR, { recursive: true, mode: 0o700 });
  await chmod(ctx.config.TEMP_BACKUP_DIR, 0o700);
  const dir = join(ctx.config.TEMP_BACKUP_DIR, `${RUN_DIR_PREFIX}${process.pid}-${Date.now()}`);
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  return dir;
}

/** Run folders left by dead runs (found after taking over their lock, or their dump container). */
export async function removeStaleRunDirs(ctx: RunContext, keep?: string): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(ctx.config.TEMP_BACKUP_DIR).catch(() => [] as string[]);
  for (const n of names) {
    const p = join(ctx.config.TEMP_BACKUP_DIR, n);
    if (n.startsWith(RUN_DIR_PREFIX) && p !== keep) {
      await rm(p, { recursive: true, force: true });
      removed.push(p);
    }
  }
  return removed;
}

const ARCH_MARKER: Record<string, string> = { x64: '.x86_64', arm64: '.aarch64' };

export async function dump(ctx: RunContext, pre: Preflight, runDir: string): Promise<DumpResult> {
  const c = ctx.config;
  if (pre.archiveComponents.length > 0) {
    return runMailcowBackup(ctx.exec, ctx.log, {
      mailcowPath: c.MAILCOW_PATH,
      location: runDir,
      components: pre.archiveComponents,
      threads: pre.threads,
      timeoutMs: 12 * 3_600_000,
    });
  }
  // vmail alone: the script has nothing to do, but a backup still carries mailcow.conf and the
  // architecture marker, as mailcow's own folders do.
  const name = backupNameFor(ctx.now());
  const folder = join(runDir, name);
  await mkdir(folder, { mode: 0o755 });
  await copyFile(join(c.MAILCOW_PATH, 'mailcow.conf'), join(folder, 'mailcow.conf'));
  await writeFile(join(folder, ARCH_MARKER[arch()] ?? `.${arch()}`), '');
  return { folder, name, archives: [], outputLines: 0 };
}
