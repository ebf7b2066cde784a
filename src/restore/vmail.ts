// vmail is a file tree on the box, not an archive: it goes back into the vmail volume here (moved
// in when the restore folder shares the volume's filesystem), with dovecot stopped as mailcow's own restore does, the owner and folder modes recorded at backup
// time, then a dovecot resync. Also packs the tree as backup_vmail.tar.zst for --download-only.
import { chmod, lchown, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/logger.js';
import { volumePath } from '../adapters/mailcow.js';
import { UserError } from '../errors.js';
import { moveTreeInto } from './move-tree.js';
import type { BackupRecord } from './plan.js';

/** `docker compose ...` run in the mailcow folder: compose finds docker-compose.yml and the project name (.env) there. */
export function compose(exec: Exec, mailcowPath: string, args: string[], what: string, timeoutMs = 300_000) {
  return exec('docker', ['compose', ...args], { what, cwd: mailcowPath, timeoutMs, capture: true });
}

export async function vmailVolume(exec: Exec, project: string): Promise<string> {
  const v = await volumePath(exec, project, 'vmail');
  if (!v) throw new UserError('preflight', `docker has no volume ${project}_vmail-vol-1: is mailcow installed here (docker compose up -d once)?`);
  return v;
}

/** Owner from the record for everything under `root` (relative paths of the record start at the volume). */
export async function applyOwnership(exec: Exec, root: string, rec: NonNullable<BackupRecord['vmail']>, prefix = ''): Promise<void> {
  await exec('chown', ['-R', '--no-dereference', `${rec.owner.uid}:${rec.owner.gid}`, root], { what: `chown of ${root}`, timeoutMs: 3_600_000 });
  const inside = (p: string) => (prefix ? (p === prefix || p.startsWith(`${prefix}/`) ? p.slice(prefix.length).replace(/^\//, '') : undefined) : p);
  for (const e of rec.owner.exceptions) {
    const rel = inside(e.path);
    if (rel === undefined) continue;
    await lchown(join(root, rel), e.uid, e.gid).catch(() => undefined);
  }
  for (const [p, mode] of Object.entries(rec.modes)) {
    const rel = inside(p);
    if (rel === undefined) continue;
    await chmod(join(root, rel), mode).catch(() => undefined);
  }
}

/** Local rsync that makes dest identical to src (every file rewritten: altered mail is replaced too). */
export async function mirror(exec: Exec, src: string, dest: string, what: string, del = true): Promise<void> {
  await exec('rsync', ['-rlpt', '--ignore-times', ...(del ? ['--delete'] : []), `${src}/`, `${dest}/`], { what, timeoutMs: 24 * 3_600_000, tailLines: 20 });
}

export async function restoreVmail(
  exec: Exec,
  log: Logger,
  o: {
    mailcowPath: string;
    project: string;
    treeDir: string;
    record: BackupRecord;
    progress?: (l: string) => void;
    /** Where the volume's previous content goes while the tree is moved in (removed after): unset copies instead, leaving the tree in place. */
    aside?: string;
  },
): Promise<void> {
  if (!o.record.vmail) throw new UserError('failed', 'the backup holds no vmail tree');
  const vmail = o.record.vmail;
  const vol = await vmailVolume(exec, o.project);
  const p = o.progress ?? (() => undefined);
  p('vmail: stopping watchdog-mailcow and dovecot-mailcow');
  await compose(exec, o.mailcowPath, ['stop', 'watchdog-mailcow', 'dovecot-mailcow'], 'stopping dovecot');
  try {
    const moved = o.aside ? await moveTreeInto(o.treeDir, vol, o.aside) : undefined;
    if (moved) {
      p(`vmail: moved the verified ${vmail.files} files into ${vol} (same filesystem: renamed, not copied)`);
      await applyOwnership(exec, vol, vmail).catch(async (e) => {
        await moved.undo();
        throw e;
      });
    } else {
      p(`vmail: copying ${vmail.files} files into ${vol}${o.aside ? ` (${o.treeDir} is on another filesystem: the tree cannot be moved)` : ''}`);
      await mirror(exec, o.treeDir, vol, 'copying the mail into the vmail volume');
      await applyOwnership(exec, vol, vmail);
    }
    log.info(`vmail: volume ${vol} now holds the backup's ${vmail.files} files, owner ${vmail.owner.uid}:${vmail.owner.gid}`);
  } finally {
    p('vmail: starting dovecot-mailcow and watchdog-mailcow');
    await compose(exec, o.mailcowPath, ['start', 'dovecot-mailcow', 'watchdog-mailcow'], 'starting dovecot');
  }
  // The volume's previous content, now replaced: gone after dovecot is back, not while mail waits.
  if (o.aside) await rm(o.aside, { recursive: true, force: true }).catch((e) => log.warn(`cannot remove ${o.aside}: ${(e as Error).message}`));
  p("vmail: doveadm force-resync -A '*'");
  await compose(exec, o.mailcowPath, ['exec', '-T', 'dovecot-mailcow', 'doveadm', 'force-resync', '-A', '*'], 'doveadm force-resync', 3_600_000).catch((e) => {
    log.warn(`doveadm force-resync failed (${(e as Error).message}); run it by hand: docker compose exec dovecot-mailcow doveadm force-resync -A '*'`);
  });
}

/** For --download-only: packs the tree as mailcow's script expects, in the same path style as the other archives. */
export async function packVmail(exec: Exec, folder: string, treeDir: string, record: BackupRecord, threads: number): Promise<string> {
  if (record.vmail) await applyOwnership(exec, treeDir, record.vmail);
  // mailcow's own archives hold /vmail/... (tar -P); its stand-in's hold ./...: copy the style.
  let absolute = true;
  const sample = (await readdir(folder)).find((n) => /^backup_(crypt|redis|postfix|rspamd)\.tar\.zst$/.test(n));
  if (sample) {
    const r = await exec('tar', ['--use-compress-program=zstd -d', '-tf', join(folder, sample)], { what: `listing ${sample}`, capture: true, timeoutMs: 120_000 });
    absolute = r.stdout.split('\n')[0]?.startsWith('/') ?? true;
  }
  const out = join(folder, 'backup_vmail.tar.zst');
  const args = absolute
    ? ['-P', '--transform', 's,^\\.,/vmail,', '-C', treeDir, '-cpf', out, '.']
    : ['-C', treeDir, '-cpf', out, '.'];
  await exec('tar', [`--use-compress-program=zstd --rsyncable -T${threads}`, '--numeric-owner', ...args], { what: 'packing backup_vmail.tar.zst', timeoutMs: 24 * 3_600_000 });
  await exec('zstd', ['-t', '-q', out], { what: 'testing backup_vmail.tar.zst', errorKind: 'verify', timeoutMs: 3_600_000 });
  return out;
}
