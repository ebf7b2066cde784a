// The copies of a backup this host already holds, offered to the restore's download as rsync
// basis so only what the host lacks comes from the box: the standby mirror's copies
// (STANDBY_DIR/<backup>/), the live vmail volume, and an earlier download kept with
// --keep-download. All are `copy` for rsync: the restore folder gets files of its own, so nothing
// done to it (mailcow's script bind-mounts it, on SELinux hosts with a relabel; --download-only
// chowns the tree) can reach the mirror's or the volume's inodes. One exception, made before rsync
// runs (linkFromMirrors): a restore that moves the mail into the volume hard-links the standby
// copies' message files, which nobody writes into (linkableFromMirror); copying a gigabyte of mail
// the host already holds was most of a failover's time. What the restore takes from this host is
// trusted only after it matched the manifest (verifyDownload).
import { existsSync, linkSync, mkdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, rmdir, symlink, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../adapters/logger.js';
import type { RunContext } from '../backup/context.js';
import { errorText } from '../errors.js';
import { volumePath } from '../adapters/mailcow.js';
import { isBackupName } from '../plan/names.js';
import { basisOrder, linkableFromMirror } from '../plan/restore-basis.js';
import { readChecksums } from './verify-local.js';

export interface RestoreBasis {
  basis: { dir: string; how: 'copy' }[];
  /** What the basis is, for the report: "the live vmail volume", "the standby copy of mailcow-…". */
  sources: string[];
  /** The standby copies among `basis`, in the same order. */
  mirrors: string[];
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
    mirrors: order.filter((b) => b.kind === 'mirror').map((b) => join(c.STANDBY_DIR, b.name)),
    close,
  };
}

/**
 * Hard-links into `folder` every wanted message file whose path and hash a standby copy's manifest
 * shares with the backup's (the first copy in `mirrors` that has it), so rsync finds it in place
 * (same size and time) and fetches or copies only the rest. The links are checked against the
 * manifest with everything else; one that does not match is unlinked and fetched from the box.
 * A copy on another filesystem lends nothing here (rsync still copies from it). Returns the
 * paths linked.
 */
export async function linkFromMirrors(log: Logger, o: { folder: string; checksums: Map<string, string>; wanted: (path: string) => boolean; mirrors: string[] }): Promise<string[]> {
  const want = new Map<string, string>();
  for (const [p, h] of o.checksums) if (linkableFromMirror(p) && o.wanted(p)) want.set(p, h);
  const made = new Set<string>();
  const linked: string[] = [];
  for (const dir of o.mirrors) {
    if (!want.size) break;
    // A copy whose manifest cannot be read lends nothing (the standby run that made it says why).
    const theirs = await readChecksums(dir).catch(() => undefined);
    if (!theirs) continue;
    // Synchronous on purpose: 38k link() calls through the thread pool's promises took ~2 s of a
    // failover; in a loop they take a tenth of that.
    try {
      let n = 0;
      for (const [p, h] of want) {
        // Now and then the event loop runs: a download started beside this keeps its pace.
        if (++n % 4096 === 0) await new Promise(setImmediate);
        if (theirs.get(p) !== h) continue;
        const to = join(o.folder, p);
        if (!made.has(dirname(to))) {
          mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
          made.add(dirname(to));
        }
        try {
          linkSync(join(dir, p), to);
          linked.push(p);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') continue; // missing from the copy: fetched
          if (code !== 'EEXIST') throw e; // already here (an earlier attempt): it stays
        }
        want.delete(p);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
      log.info(`${dir} is on another filesystem than ${o.folder}: its files are copied, not linked`);
    }
  }
  if (linked.length) log.info(`hard-linked ${linked.length} message files from the standby copies into ${o.folder}`);
  return linked;
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
