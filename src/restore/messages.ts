// Single-message restore: one mailbox's message files of one or more backups are fetched into a
// private scratch folder under the vmail volume (only files the live mailbox or a newer fetched
// backup does not already have travel), dovecot searches them with the admin's query (it holds the
// mail_crypt keys), and `doveadm import` adds the chosen ones to the live mailbox as
// `Restored-<date>/<folder>`. The scratch folder is removed however the command ends, and a
// dead run's leftover by the next run.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat, symlink } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { CONTAINER_VMAIL, doveadm } from '../adapters/doveadm.js';
import { alive } from '../adapters/lock.js';
import { readMailcowConf } from '../adapters/mailcow.js';
import type { RunContext } from '../backup/context.js';
import { loadScrubState } from '../backup/scrub.js';
import { errorText, UserError } from '../errors.js';
import {
  backupsToSearch,
  baseOfFile,
  FETCH_FIELDS,
  isMessagePath,
  maildirFolder,
  mergeFound,
  messageFilters,
  parseFetch,
  restoredFolderFor,
  scratchName,
  scratchPid,
  selectionQuery,
  type Candidate,
} from '../plan/message-search.js';
import { verificationOf } from '../plan/verification.js';
import { downloadBackup } from './download.js';
import { fetchIndex, publishedNames, restoreDir } from './engine.js';
import { mailboxDir, resolveBackup } from './plan.js';
import { lockForRestore } from './restore-lock.js';
import { verifyDownload } from './verify-local.js';
import { vmailVolume } from './vmail.js';

const VMAIL = 'vmail';
/** GUIDs per doveadm call: a query is one argument list. */
const BATCH = 200;

export interface MessageSearchRequest {
  mailbox: string;
  /** doveadm search query, as argument words. */
  query: string[];
  /** A dovecot folder name (INBOX, Sent, Archive/2024); all when undefined. */
  folder?: string;
  /** A backup name or 'latest': only that one. */
  backup?: string;
  /** Only backups made on or after this time. */
  since?: Date;
  /** This backup and the older ones. */
  upTo?: string;
}

export interface MessageSearch {
  mailbox: string;
  /** Backups searched, newest first. */
  searched: string[];
  /** Of those, the ones that hold no mail of the mailbox (or of the folder). */
  without: string[];
  found: Candidate[];
}

/** The scratch folder and what the search left there for the import. */
export interface SearchSession {
  ctx: RunContext;
  mailcowPath: string;
  scratch: string;
  /** Per backup: its fetched maildir's location, as dovecot-mailcow sees it. */
  locations: Map<string, string>;
  result: MessageSearch;
  remove(): Promise<void>;
}

/** Removes scratch folders whose run is gone (killed with SIGKILL, a crash, a power cut). */
async function removeLeftovers(ctx: RunContext, vol: string): Promise<void> {
  for (const n of await readdir(vol)) {
    const pid = scratchPid(n);
    if (pid === undefined || pid === process.pid || alive(pid)) continue;
    ctx.log.info(`removing ${join(vol, n)}, left by an earlier message search that did not end (process ${pid} is gone)`);
    await rm(join(vol, n), { recursive: true, force: true });
  }
}

/**
 * Searches the backups; the caller must call `remove()` on the session it gets (finally), also
 * after an error it throws: the scratch folder is removed here then.
 */
export async function searchMessages(ctx: RunContext, req: MessageSearchRequest, progress: (l: string) => void): Promise<SearchSession> {
  const c = ctx.config;
  const user = req.mailbox.toLowerCase();
  const dir = mailboxDir(user);
  if (!dir) throw new UserError('config', `--mailbox ${req.mailbox} is not a mailbox address (user@domain)`);
  const liveConf = readMailcowConf(c.MAILCOW_PATH);
  const sub = liveConf.MAILDIR_SUB ?? 'Maildir';
  const vol = await vmailVolume(ctx.exec, liveConf.COMPOSE_PROJECT_NAME ?? 'mailcowdockerized');

  const published = await publishedNames(ctx);
  let only: string | undefined;
  if (req.backup) {
    const known = await loadScrubState(c.STATE_DIR);
    const r = resolveBackup(published, req.backup, (n) => verificationOf(known[n]).state === 'damaged');
    if (!r.ok) throw new UserError('config', r.reason);
    only = r.name;
  }
  const names = backupsToSearch(published, { only, since: req.since, upTo: req.upTo });
  if (names.length === 0) throw new UserError('config', `no published backup was made on or after ${req.since?.toISOString() ?? '?'} (newest: ${published.sort().at(-1) ?? 'none'})`);
  const folder = req.folder === undefined ? undefined : maildirFolder(req.folder);

  const scratch = join(vol, scratchName(process.pid));
  const live = join(vol, dir);
  const owner = await stat(live).catch(() => undefined);
  // The scratch folder is in the vmail volume: a backup run must not walk it (and a restore
  // changes the mailbox), so the backup lock is held while it exists, as a restore holds it.
  const lock = await lockForRestore(ctx, progress);
  const session: SearchSession = {
    ctx,
    mailcowPath: c.MAILCOW_PATH,
    scratch,
    locations: new Map(),
    result: { mailbox: user, searched: names, without: [], found: [] },
    remove: async () => {
      try {
        await rm(scratch, { recursive: true, force: true });
      } finally {
        await lock.release();
      }
    },
  };
  try {
    await removeLeftovers(ctx, vol);
    await rm(scratch, { recursive: true, force: true });
    await mkdir(join(scratch, 'empty', 'cur'), { recursive: true, mode: 0o700 });
    // dovecot reads the fetched files as the mailbox's owner (5000 in mailcow).
    const own = async (p: string) => {
      if (owner && process.getuid?.() === 0) await ctx.exec('chown', ['-R', `${owner.uid}:${owner.gid}`, p], { what: `chown of ${p}`, timeoutMs: 600_000 });
    };
    await own(scratch);
    const inContainer = (p: string) => `${CONTAINER_VMAIL}/${relative(vol, p)}`;
    const location = (maildir: string) => `maildir:${inContainer(maildir)}:INDEX=MEMORY`;
    // The query, the container and the mailbox are checked on an empty folder before any download.
    await doveadm(ctx.exec, c.MAILCOW_PATH, ['-o', `mail_location=${location(join(scratch, 'empty'))}`, 'search', '-u', user, ...req.query], 'checking the search query with doveadm');

    // The live mailbox, laid out like a backup folder, lends rsync the files it still has.
    await mkdir(join(scratch, 'live'), { mode: 0o700 });
    await symlink(vol, join(scratch, 'live', VMAIL));
    const basis: { dir: string; how: 'copy' }[] = [{ dir: join(scratch, 'live'), how: 'copy' }];
    const perBackup: Candidate[][] = [];
    for (const name of names) {
      if (ctx.signal.aborted) throw new UserError('interrupted', 'interrupted');
      progress(`searching ${name}`);
      const { checksums } = await fetchIndex(ctx, name, `${ctx.config.HETZNER_REMOTE_PATH}/${name}`, join(restoreDir(ctx), name));
      const prefix = `${VMAIL}/${dir}/${sub ? `${sub}/` : ''}`;
      const wanted = new Map<string, string>();
      for (const [p, h] of checksums) if (p.startsWith(prefix) && isMessagePath(p.slice(prefix.length), folder)) wanted.set(p, h);
      if (wanted.size === 0) {
        session.result.without.push(name);
        continue;
      }
      const local = join(scratch, name);
      await downloadBackup(ctx.exec, ctx.log, {
        target: ctx.box.target,
        remoteFolder: `${c.HETZNER_REMOTE_PATH}/${name}`,
        localFolder: local,
        filters: messageFilters({ vmailDir: VMAIL, mailboxDir: dir, maildirSub: sub, folder }),
        basis,
      });
      await verifyDownload(ctx.exec, local, checksums, (p) => wanted.has(p), ctx.signal);
      await own(local);
      basis.push({ dir: local, how: 'copy' }); // rsync takes one kind of basis per call: copy, as for the live mailbox
      const maildir = join(local, VMAIL, dir, sub);
      session.locations.set(name, location(maildir));
      const r = await doveadm(ctx.exec, c.MAILCOW_PATH, ['-f', 'json', '-o', `mail_location=${location(maildir)}`, 'fetch', '-u', user, FETCH_FIELDS.join(' '), ...req.query], `searching ${name} with doveadm`);
      const files = new Map<string, { path: string; hash: string }>();
      for (const [p, h] of wanted) files.set(baseOfFile(basename(p)), { path: p.slice(prefix.length), hash: h });
      const found: Candidate[] = [];
      for (const m of parseFetch(r.stdout)) {
        const f = files.get(m.guid);
        if (!f) continue; // a message dovecot names by a GUID of its own: not a file of the backup
        found.push({ ...m, backup: name, path: f.path, hash: f.hash, inMailbox: false });
      }
      ctx.log.info(`${name}: ${found.length} message(s) of ${user} match`);
      perBackup.push(found);
    }
    if (session.result.without.length === names.length) {
      throw new UserError('config', `no backup searched holds mail of ${user}${req.folder === undefined ? '' : ` in folder ${req.folder}`} (searched: ${names.join(', ')})`);
    }
    session.result.found = mergeFound(perBackup);
    await markPresent(ctx, user, session.result.found);
    return session;
  } catch (e) {
    await session.remove().catch((r) => ctx.log.warn(`could not remove ${scratch}: ${errorText(r)}`));
    throw e;
  }
}

/**
 * A message the live mailbox still has is not restored again: dovecot keeps a maildir message's
 * GUID (its file's base name) when it moves or imports it, so the live mailbox is asked for
 * those GUIDs; the same GUID with the same size is the same message.
 */
async function markPresent(ctx: RunContext, user: string, found: Candidate[]): Promise<void> {
  for (let i = 0; i < found.length; i += BATCH) {
    const part = found.slice(i, i + BATCH);
    const q: string[] = [];
    part.forEach((m, j) => q.push(...(j ? ['OR'] : []), 'guid', m.guid));
    const r = await doveadm(ctx.exec, ctx.config.MAILCOW_PATH, ['-f', 'json', 'fetch', '-u', user, 'guid size.physical', ...q], `looking for the found messages in the live mailbox ${user}`);
    const live = new Set(parseFetch(r.stdout).map((m) => `${m.guid}\u0000${m.size}`));
    for (const m of part) m.inMailbox = live.has(`${m.guid}\u0000${m.size}`);
  }
}

export interface MessageRestore {
  folder: string;
  restored: number;
  /** Still in the live mailbox: skipped. */
  skipped: number;
}

/** Imports the chosen messages into `Restored-<date>/<their folder>` of the live mailbox. */
export async function importMessages(s: SearchSession, chosen: Candidate[]): Promise<MessageRestore> {
  const { ctx } = s;
  const folder = restoredFolderFor(ctx.now());
  const todo = chosen.filter((m) => !m.inMailbox);
  const byBackup = new Map<string, Candidate[]>();
  for (const m of todo) byBackup.set(m.backup, [...(byBackup.get(m.backup) ?? []), m]);
  let restored = 0;
  for (const [backup, ms] of byBackup) {
    const loc = s.locations.get(backup);
    if (!loc || !existsSync(s.scratch)) throw new UserError('failed', `the fetched copy of ${backup} is gone; search again`);
    for (let i = 0; i < ms.length; i += BATCH) {
      const part = ms.slice(i, i + BATCH);
      await doveadm(ctx.exec, s.mailcowPath, ['import', '-u', s.result.mailbox, loc, folder, ...selectionQuery(part)], `importing ${part.length} message(s) of ${backup} into ${s.result.mailbox}`);
      restored += part.length;
    }
  }
  ctx.log.info(`${s.result.mailbox}: ${restored} message(s) restored into ${folder}, ${chosen.length - todo.length} skipped (still in the mailbox)`);
  return { folder, restored, skipped: chosen.length - todo.length };
}
