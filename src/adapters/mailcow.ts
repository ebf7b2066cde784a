// mailcow-dockerized as this tool sees it: its config file, its volumes (through docker), and
// its own backup script, whose exit status is not trusted (see the contract in shared/reference).
import { existsSync, readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { UserError } from '../errors.js';
import type { Component } from '../config/schema.js';
import { conflictMessage, CONFLICT_LINE } from '../plan/dump-container.js';
import type { Exec } from './exec.js';
import type { Logger } from './logger.js';

export const SCRIPT = 'helper-scripts/backup_and_restore.sh';

/** The archive each component leaves in a backup folder (mysql's is named after mariadb). */
export const ARCHIVE_BASE: Record<Component, string> = {
  vmail: 'backup_vmail',
  crypt: 'backup_crypt',
  redis: 'backup_redis',
  rspamd: 'backup_rspamd',
  postfix: 'backup_postfix',
  mysql: 'backup_mariadb',
};

/** The docker volume behind each component. */
export const VOLUME_OF: Record<Component, string> = {
  vmail: 'vmail-vol-1',
  crypt: 'crypt-vol-1',
  redis: 'redis-vol-1',
  rspamd: 'rspamd-vol-1',
  postfix: 'postfix-vol-1',
  mysql: 'mysql-vol-1',
};

export function readMailcowConf(mailcowPath: string): Record<string, string> {
  const path = join(mailcowPath, 'mailcow.conf');
  try {
    return parse(readFileSync(path, 'utf8'));
  } catch {
    throw new UserError('preflight', `${path} cannot be read; check MAILCOW_PATH (it must hold mailcow.conf and ${SCRIPT})`);
  }
}

/** Values of mailcow.conf that must never reach a log, a report or an e-mail. */
export function secretsOf(conf: Record<string, string>): string[] {
  return Object.entries(conf)
    // DBROOT is the database root password; API_KEY_READ_ONLY is a key without "KEY" at its end.
    .filter(([k]) => /PASS|SECRET|TOKEN|KEY|^DBROOT$/i.test(k))
    .map(([, v]) => v)
    .filter((v) => v.length >= 4);
}

export function checkMailcowFolder(mailcowPath: string): void {
  for (const f of [SCRIPT, 'mailcow.conf']) {
    if (!existsSync(join(mailcowPath, f))) {
      throw new UserError('preflight', `${join(mailcowPath, f)} is missing; set MAILCOW_PATH to the folder of mailcow-dockerized (e.g. /opt/mailcow-dockerized)`);
    }
  }
}

export async function volumePath(exec: Exec, project: string, component: Component): Promise<string | undefined> {
  const name = `${project}_${VOLUME_OF[component]}`;
  try {
    const r = await exec('docker', ['volume', 'inspect', '--format', '{{ .Mountpoint }}', name], { what: `docker volume inspect ${name}`, capture: true, timeoutMs: 30_000 });
    const p = r.stdout.trim();
    return p.startsWith('/') ? p : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Files and bytes under a folder (apparent sizes), walking it without holding the tree in memory.
 * `onFolder` sees each folder (relative, '' for the root) once its files are counted, with their
 * number and the totals so far; true stops the walk.
 */
export async function folderTotals(root: string, onFolder?: (rel: string, files: number, sofar: { files: number; bytes: number }) => boolean | void): Promise<{ files: number; bytes: number }> {
  const t = { files: 0, bytes: 0 };
  const stack = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    let entries;
    try {
      entries = await readdir(join(root, rel), { withFileTypes: true });
    } catch {
      continue;
    }
    let here = 0;
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        const st = await stat(join(root, p)).catch(() => undefined);
        if (st) (here++, t.files++, (t.bytes += st.size));
      }
    }
    if (onFolder?.(rel, here, t)) break;
  }
  return t;
}

export const folderBytes = async (root: string): Promise<number> => (await folderTotals(root)).bytes;

export interface DumpResult {
  folder: string;
  name: string;
  archives: { component: Component; file: string; bytes: number }[];
  outputLines: number;
}

/**
 * Runs mailcow's script for the archive components and judges the result itself: the script
 * can exit 0 with an archive missing or truncated.
 */
export async function runMailcowBackup(
  exec: Exec,
  log: Logger,
  opts: { mailcowPath: string; location: string; components: Component[]; threads: number; timeoutMs: number },
): Promise<DumpResult> {
  let lines = 0;
  // docker refusing the container's name: the reason every archive after it is missing.
  let conflict: string | undefined;
  const before = new Set(await readdir(opts.location));
  await exec('bash', [join(opts.mailcowPath, SCRIPT), 'backup', ...opts.components], {
    what: "mailcow's backup script",
    cwd: join(opts.mailcowPath, 'helper-scripts'),
    env: { MAILCOW_BACKUP_LOCATION: opts.location, THREADS: String(opts.threads) },
    timeoutMs: opts.timeoutMs,
    tailLines: 30,
    onLine: (line) => {
      lines++;
      if (!conflict && CONFLICT_LINE.test(line)) conflict = line;
      // tar -v lists every archived path: only the rest is worth the log's space.
      if (!/^\.?\//.test(line)) log.debug(`mailcow: ${line}`);
    },
  });
  const created = (await readdir(opts.location)).filter((n) => /^mailcow-\d{4}(-\d{2}){5}$/.test(n) && !before.has(n));
  const refused = (details: string[] = []) => (conflict ? new UserError('dump-busy', conflictMessage(conflict), details) : undefined);
  if (created.length !== 1) {
    throw refused() ?? new UserError('failed', `mailcow's backup script made ${created.length === 0 ? 'no' : created.length} backup folder${created.length === 1 ? '' : 's'} in ${opts.location}; see the log for its output`);
  }
  const folder = join(opts.location, created[0]!);
  const archives: DumpResult['archives'] = [];
  const problems: string[] = [];
  for (const component of opts.components) {
    const base = ARCHIVE_BASE[component];
    const file = ['.tar.zst', '.tar.gz'].map((ext) => join(folder, base + ext)).find((f) => existsSync(f));
    if (!file) {
      problems.push(`${component}: ${base}.tar.zst is missing`);
      continue;
    }
    const bytes = (await stat(file)).size;
    if (bytes === 0) {
      problems.push(`${component}: ${file} is empty`);
      continue;
    }
    try {
      await exec(file.endsWith('.zst') ? 'zstd' : 'gzip', ['-t', '-q', file], { what: `testing ${file}`, timeoutMs: opts.timeoutMs });
    } catch (e) {
      problems.push(`${component}: ${file} is damaged (${(e as Error).message})`);
      continue;
    }
    archives.push({ component, file, bytes });
  }
  if (problems.length) {
    throw refused(problems) ?? new UserError('failed', `mailcow's backup script did not produce a good archive for ${problems.length} component${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`, problems);
  }
  return { folder, name: created[0]!, archives, outputLines: lines };
}
