// Single-mailbox restore (no mailcow tool offers it): one user's maildir from the backup into the
// live vmail volume, replacing the mailbox or merged next to it as a "Restored-<date>" folder;
// then owner fixed and dovecot resyncs that user only. Other mailboxes are never touched.
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/logger.js';
import { UserError } from '../errors.js';
import { applyOwnership, compose, mirror, vmailVolume } from './vmail.js';
import { freeRestoredName, mailboxDir, restoredFolderName, type BackupRecord, type Mode } from './plan.js';
import type { LiveMessage } from './replace-loss.js';

/** Maildir++ folders of a maildir: '' (INBOX) and `.Name` folders holding cur/ or new/. */
export async function maildirFolders(maildir: string): Promise<string[]> {
  const out: string[] = [];
  if (existsSync(join(maildir, 'cur')) || existsSync(join(maildir, 'new'))) out.push('');
  for (const n of await readdir(maildir).catch(() => [] as string[])) {
    if (n.startsWith('.') && n !== '.' && n !== '..' && (await stat(join(maildir, n)).catch(() => undefined))?.isDirectory()) out.push(n);
  }
  return out;
}

/** The messages of a live maildir (cur/ and new/ of every folder), for the replace plan; none if it is missing. */
export async function liveMessages(maildir: string): Promise<LiveMessage[]> {
  const out: LiveMessage[] = [];
  for (const f of await maildirFolders(maildir)) {
    for (const d of ['cur', 'new']) {
      const rel = f ? `${f}/${d}` : d;
      for (const n of await readdir(join(maildir, rel)).catch(() => [] as string[])) {
        const st = await stat(join(maildir, rel, n)).catch(() => undefined);
        if (st?.isFile()) out.push({ path: `${rel}/${n}`, bytes: st.size, mtimeMs: st.mtimeMs });
      }
    }
  }
  return out;
}

/** Pure: `.Sent` -> `.Restored-2026-11-23.Sent`, INBOX -> `.Restored-2026-11-23`. */
export const mergedFolderName = (folder: string, restored: string) => (folder === '' ? `.${restored}` : `.${restored}${folder}`);

export async function restoreMailbox(
  exec: Exec,
  log: Logger,
  o: { mailcowPath: string; project: string; address: string; userDir: string; record: BackupRecord; mode: Mode; backupSub: string; liveSub: string },
): Promise<{ files: number; target: string }> {
  const rel = mailboxDir(o.address);
  if (!rel || !o.record.vmail) throw new UserError('config', `${o.address} is not a mailbox address this tool can restore`);
  const vol = await vmailVolume(exec, o.project);
  const dest = join(vol, rel);
  const srcMaildir = join(o.userDir, o.backupSub);
  const destMaildir = join(dest, o.liveSub);
  await mkdir(destMaildir, { recursive: true });
  let target: string;
  if (o.mode === 'replace') {
    if (o.backupSub === o.liveSub) await mirror(exec, o.userDir, dest, `replacing the mailbox ${o.address}`);
    else await mirror(exec, srcMaildir, destMaildir, `replacing the mailbox ${o.address}`);
    target = destMaildir;
  } else {
    const wanted = restoredFolderName(o.record.name);
    const restored = freeRestoredName(wanted, (n) => existsSync(join(destMaildir, `.${n}`)));
    if (restored !== wanted) log.warn(`mailbox ${o.address}: the folder ${wanted} exists from an earlier restore and is left as it is; this one goes to ${restored}`);
    const subs: string[] = [];
    for (const f of await maildirFolders(srcMaildir)) {
      const to = join(destMaildir, mergedFolderName(f, restored));
      await rm(to, { recursive: true, force: true });
      for (const d of ['cur', 'new']) if (existsSync(join(srcMaildir, f, d))) await cp(join(srcMaildir, f, d), join(to, d), { recursive: true, preserveTimestamps: true });
      await mkdir(join(to, 'tmp'), { recursive: true });
      await appendFile(join(to, 'maildirfolder'), '');
      subs.push(mergedFolderName(f, restored).slice(1));
    }
    await appendFile(join(destMaildir, 'subscriptions'), subs.map((s) => `${s}\n`).join(''));
    target = join(destMaildir, `.${restored}`);
  }
  await applyOwnership(exec, dest, o.record.vmail, rel);
  const files = await countFiles(o.userDir);
  log.info(`mailbox ${o.address}: ${o.mode === 'replace' ? 'replaced with' : 'merged as a restored folder from'} the backup (${files} files)`);
  await compose(exec, o.mailcowPath, ['exec', '-T', 'dovecot-mailcow', 'doveadm', 'force-resync', '-u', o.address, '*'], `doveadm force-resync -u ${o.address}`, 3_600_000).catch((e) => {
    log.warn(`doveadm force-resync failed (${(e as Error).message}); run it by hand: docker compose exec dovecot-mailcow doveadm force-resync -u ${o.address} '*'`);
  });
  return { files, target };
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}
