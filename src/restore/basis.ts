// The copies of a backup this host already holds, offered to the restore's download as rsync
// basis so only what the host lacks comes from the box: the standby mirror's copies
// (STANDBY_DIR/<backup>/), the live vmail volume, and an earlier download kept with
// --keep-download. All are `copy`: the restore folder gets files of its own, so nothing done to
// it (mailcow's script bind-mounts it, on SELinux hosts with a relabel; --download-only chowns
// the tree) can reach the mirror's or the volume's inodes. What rsync takes is trusted only
// after it matched the manifest (verifyDownload).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, rmdir, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunContext } from '../backup/context.js';
import { errorText } from '../errors.js';
import { volumePath } from '../adapters/mailcow.js';
import { isBackupName } from '../plan/names.js';
import { basisOrder } from '../plan/restore-basis.js';

export interface RestoreBasis {
  basis: { dir: string; how: 'copy' }[];
  /** What the basis is, for the report: "the live vmail volume", "the standby copy of mailcow-…". */
  sources: string[];
  /** Removes the scratch folder (only its symlink: never anything inside the volume). */
  close: () => Promise<void>;
}

export async function restoreBasis(ctx: RunContext, o: { name: string; wantsMail: boolean; project: string }): Promise<RestoreBasis> {
  const c = ctx.config;
  const mirrors = await readdir(c.STANDBY_DIR, { withFileTypes: true }).then((es) => es.filter((e) => e.isDirectory() && isBackupName(e.name)).map((e) => e.name)).catch(() => [] as string[]);
  const vol = o.wantsMail ? await volumePath(ctx.exec, o.project, 'vmail') : undefined;
  // The backup's vmail/… is the volume's root: rsync sees the volume through a `vmail` symlink
  // in a private scratch folder, so the basis is laid out like the backup folder.
  let scratch: string | undefined;
  if (vol && existsSync(vol)) {
    await mkdir(c.TEMP_BACKUP_DIR, { recursive: true, mode: 0o700 });
    scratch = await mkdtemp(join(c.TEMP_BACKUP_DIR, 'restore-live-'));
    await symlink(vol, join(scratch, 'vmail'));
  }
  const order = basisOrder({ name: o.name, mirrors, live: scratch });
  const close = async () => {
    if (!scratch) return;
    await unlink(join(scratch, 'vmail')).catch(() => undefined);
    await rmdir(scratch).catch((e) => ctx.log.warn(`cannot remove ${scratch}: ${errorText(e)}`));
  };
  return {
    basis: order.map((b) => ({ dir: b.kind === 'live' ? b.name : join(c.STANDBY_DIR, b.name), how: 'copy' as const })),
    sources: order.map((b) => (b.kind === 'live' ? `the live vmail volume ${vol}` : `the standby copy ${join(c.STANDBY_DIR, b.name)}`)),
    close,
  };
}

/**
 * An earlier download in the restore folder (kept with --keep-download, or left by a failed
 * restore) of another backup: mailcow's script must be offered only this backup, so it goes, but
 * its vmail tree becomes this download's starting point (trimmed to what this restore fetches;
 * rsync then fetches only the difference and --delete removes what the new backup lacks).
 */
export async function reuseEarlierDownload(ctx: RunContext, location: string, name: string, selection: { vmail: boolean; mailboxDirs: string[] }): Promise<string | undefined> {
  const others = (await readdir(location)).filter((n) => n.startsWith('mailcow-') && n !== name).sort();
  const folder = join(location, name);
  const from = others.at(-1);
  let reused: string | undefined;
  if (from && isBackupName(from) && (selection.vmail || selection.mailboxDirs.length) && existsSync(join(location, from, 'vmail')) && !existsSync(join(folder, 'vmail'))) {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await rename(join(location, from, 'vmail'), join(folder, 'vmail'));
    if (!selection.vmail) await trimToMailboxes(join(folder, 'vmail'), selection.mailboxDirs);
    reused = from;
    ctx.log.info(`the earlier download of ${from} is the starting point of this one: only what differs is fetched`);
  }
  for (const n of others) await rm(join(location, n), { recursive: true, force: true });
  return reused;
}

async function trimToMailboxes(vmail: string, keep: string[]): Promise<void> {
  const present: string[] = [];
  for (const d of await readdir(vmail, { withFileTypes: true })) {
    if (!d.isDirectory()) {
      await rm(join(vmail, d.name), { force: true });
      continue;
    }
    for (const u of await readdir(join(vmail, d.name), { withFileTypes: true })) {
      if (u.isDirectory()) present.push(`${d.name}/${u.name}`);
      else await rm(join(vmail, d.name, u.name), { force: true });
    }
  }
  for (const p of present) if (!keep.includes(p)) await rm(join(vmail, p), { recursive: true, force: true });
  for (const d of await readdir(vmail)) await rmdir(join(vmail, d)).catch(() => undefined); // only empty ones go
}
