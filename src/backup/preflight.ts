// Everything a run needs, checked before anything is written: mailcow's folder, the vmail volume,
// room for the dump, the SSH key and the box behind its pinned host key.
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import type { Component, Config } from '../config/schema.js';
import { freeBytes } from '../adapters/disk.js';
import { checkMailcowFolder, folderBytes, readMailcowConf, secretsOf, volumePath } from '../adapters/mailcow.js';
import { bytes } from '../plan/human.js';
import type { RunContext } from './context.js';
import { clearLeftoverContainer } from './leftover-container.js';

export interface Preflight {
  mailcowConf: Record<string, string>;
  archiveComponents: Component[];
  vmailPath?: string;
  threads: number;
  dumpEstimate?: number;
  tempFree?: number;
  /** mailcow's dump container that a dead run left, removed (for the report). */
  removedContainer?: string;
}

export const DUMP_MARGIN = 1.1;
export const DUMP_SLACK = 64 * 1024 * 1024;

export function threadsFor(c: Config): number {
  return c.THREADS === 'auto' ? Math.max(1, availableParallelism() - 2) : c.THREADS;
}

export function checkComponents(c: Config): void {
  if (c.BACKUP_COMPONENTS.includes('vmail') && !c.BACKUP_COMPONENTS.includes('crypt') && !c.ALLOW_VMAIL_WITHOUT_CRYPT) {
    throw new UserError(
      'config',
      `BACKUP_COMPONENTS has vmail without crypt: mail encrypted by mail_crypt cannot be read back without the crypt keys; add crypt (BACKUP_COMPONENTS=${[...c.BACKUP_COMPONENTS, 'crypt'].join(',')}) or set ALLOW_VMAIL_WITHOUT_CRYPT=true`,
    );
  }
}

export function checkKeyFile(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    throw new UserError('preflight', `the SSH key ${path} does not exist; create one (ssh-keygen -t ed25519 -f ${path}) or fix SSH_KEY_PATH`);
  }
  if (mode & 0o077) throw new UserError('preflight', `the SSH key ${path} can be read by others (mode ${mode.toString(8)}) and ssh will refuse it; fix: chmod 600 ${path}`);
  if (!existsSync(dirname(path))) throw new UserError('preflight', `SSH_KEY_PATH ${path} is not in an existing folder`);
}

export function checkKnownHosts(path: string): void {
  if (!existsSync(path)) {
    throw new UserError('preflight', `the pinned host key file ${path} does not exist; pin the box's key with the installer (node /opt/mailcow-cold-standby/dist/install.js --yes re-pins it from the existing .env), or set SSH_KNOWN_HOSTS`);
  }
}

/** The nearest existing folder: check-disk-space needs one that exists. */
function existingAncestor(p: string): string {
  let cur = p;
  while (!existsSync(cur) && cur !== '/') cur = dirname(cur);
  return cur;
}

export async function preflight(ctx: RunContext): Promise<Preflight> {
  const c = ctx.config;
  checkComponents(c);
  checkMailcowFolder(c.MAILCOW_PATH);
  const mailcowConf = readMailcowConf(c.MAILCOW_PATH);
  for (const s of secretsOf(mailcowConf)) ctx.log.addSecret(s);
  const project = mailcowConf.COMPOSE_PROJECT_NAME || 'mailcowdockerized';

  let vmailPath: string | undefined;
  if (c.BACKUP_COMPONENTS.includes('vmail')) {
    vmailPath = c.VMAIL_VOLUME_PATH ?? (await volumePath(ctx.exec, project, 'vmail'));
    if (!vmailPath) throw new UserError('preflight', `cannot find the vmail volume (docker volume inspect ${project}_vmail-vol-1 gave nothing); set VMAIL_VOLUME_PATH`);
    if (!existsSync(vmailPath) || !statSync(vmailPath).isDirectory()) {
      throw new UserError('preflight', `the vmail volume folder ${vmailPath} does not exist; check VMAIL_VOLUME_PATH`);
    }
  }

  const archiveComponents = c.BACKUP_COMPONENTS.filter((x) => x !== 'vmail');
  checkKeyFile(c.SSH_KEY_PATH);
  checkKnownHosts(c.SSH_KNOWN_HOSTS);
  await ctx.box.connect();
  return { mailcowConf, archiveComponents, vmailPath, threads: threadsFor(c) };
}

/**
 * What only a run that dumps needs (a run that takes the newest backup's dump by hard link
 * touches neither docker nor the temp folder's space): no leftover dump container, room for the
 * dump. Returns the container it removed, for the report.
 */
export async function dumpPreflight(ctx: RunContext, pre: Preflight, tookOver?: string, runDir?: string): Promise<string | undefined> {
  const c = ctx.config;
  const { archiveComponents } = pre;
  const project = pre.mailcowConf.COMPOSE_PROJECT_NAME || 'mailcowdockerized';
  // Before the space check: a dead run's half-written dump is removed with its container.
  const removedContainer = archiveComponents.length ? await clearLeftoverContainer(ctx, tookOver, undefined, runDir) : undefined;
  let sourceBytes = 0;
  let largest = 0;
  let known = true;
  for (const comp of archiveComponents) {
    const p = await volumePath(ctx.exec, project, comp);
    const n = p && existsSync(p) ? await folderBytes(p) : undefined;
    if (n === undefined) known = false;
    else {
      sourceBytes += n;
      largest = Math.max(largest, n);
    }
  }
  // Encryption writes each archive's .age next to it before the plaintext goes: the largest twice.
  const encrypting = (c.ENCRYPT_RECIPIENTS ?? []).length > 0;
  const extra = encrypting ? Math.ceil(largest * DUMP_MARGIN) : 0;
  const dumpEstimate = known ? Math.ceil(sourceBytes * DUMP_MARGIN) + DUMP_SLACK + extra : undefined;
  const free = await freeBytes(existingAncestor(c.TEMP_BACKUP_DIR));
  if (dumpEstimate === undefined) {
    ctx.log.warn(`cannot size the docker volumes to estimate the dump; ${bytes(free)} free in ${c.TEMP_BACKUP_DIR}`);
  } else if (free < dumpEstimate) {
    throw new UserError(
      'preflight',
      `not enough space in ${c.TEMP_BACKUP_DIR}: the dump needs up to ${bytes(dumpEstimate)} (volumes ${bytes(sourceBytes)} + 10 % + 64 MiB${encrypting ? ', + the largest again for its encrypted copy' : ''}), ${bytes(free)} free; free space or point TEMP_BACKUP_DIR elsewhere`,
    );
  }

  pre.dumpEstimate = dumpEstimate;
  pre.tempFree = free;
  return removedContainer;
}

export const cachePath = (c: Config) => join(c.STATE_DIR, 'hash-cache.jsonl');
