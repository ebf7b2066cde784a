// The restore engine, used by the unattended command and by the wizard alike:
// prepare (connect, fetch the backup's small files, check this host, make the plan) and
// execute (download, verify, then and only then touch the host; start what was stopped).
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse } from 'dotenv';
import { createExec, type Exec } from '../adapters/exec.js';
import { freeBytes } from '../adapters/disk.js';
import { ARCHIVE_BASE, readMailcowConf, secretsOf, volumePath } from '../adapters/mailcow.js';
import { isArchivePart } from '../plan/archive-tree.js';
import type { RunContext } from '../backup/context.js';
import type { Component } from '../config/schema.js';
import { errorText, isUserError, UserError } from '../errors.js';
import { RECORD_FILE } from '../plan/manifest.js';
import { publishedBackups } from '../plan/names.js';
import { parseBackupRef, snapshotBackupFolder } from '../plan/snapshots.js';
import { backupsInSnapshot, findSnapshots } from '../backup/snapshots.js';
import { downloadBackup, downloadFilters, META_FILES } from './download.js';
import { liveMessages, restoreMailbox } from './mailbox.js';
import { backupMailboxes, chosenMailboxBytes, type BackupMailbox } from './mailbox-list.js';
import { backupMessageKeys, replaceLoss, type ReplaceLoss } from './replace-loss.js';
import { runMailcowRestore } from './mailcow-restore.js';
import { loadScrubState } from '../backup/scrub.js';
import { verificationOf } from '../plan/verification.js';
import {
  archiveOrder,
  backupIntegrityCheck,
  bytesNeeded,
  hostArchMarker,
  mailboxDir,
  planText,
  preRestoreChecks,
  resolveBackup,
  type BackupRecord,
  type Check,
  type Choices,
  type HostFacts,
  type Mode,
} from './plan.js';
import { readChecksums, verifyDownload } from './verify-local.js';
import { fetchVerified } from './fetch-verified.js';
import { loadIdentities, type Identities } from '../adapters/age.js';
import { isEncryptedName, recipientFingerprint } from '../plan/age-keys.js';
import { compose, packVmail, restoreVmail, vmailVolume } from './vmail.js';
import type { HeldLock } from '../adapters/lock.js';
import { lockForRestore } from './restore-lock.js';
import { clearLeftoverContainer } from '../backup/leftover-container.js';
import { restoreBasis, reuseEarlierDownload } from './basis.js';
import { bytes } from '../plan/human.js';

export interface RestoreRequest {
  /** A published backup name or 'latest'; `NAME@SNAPSHOT` (or `latest@SNAPSHOT`): as that snapshot holds it. */
  backup: string;
  components: Component[];
  mailboxes: string[];
  mode: Mode;
  /** Fetch and verify into this folder (vmail packed as backup_vmail.tar.zst), touch nothing else. */
  downloadOnly?: string;
  keepDownload?: boolean;
  /** age identity file (private key) for an encrypted backup. */
  identity?: string;
}

/** Asks for the identity file on a terminal when the chosen backup is encrypted (the wizard). */
export type AskIdentity = (backup: string, recipients: string[]) => Promise<string>;

export interface Prepared {
  name: string;
  /** The backup's folder on the box, relative to its home (inside `.zfs/snapshot/…` for a snapshot's). */
  remoteFolder: string;
  record: BackupRecord;
  choices: Choices;
  checks: Check[];
  plan: string[];
  facts?: HostFacts;
  location: string;
  folder: string;
  checksums: Map<string, string>;
  request: RestoreRequest;
  /** Loaded and proven (it decrypted mailcow.conf.age) when the backup is encrypted. */
  identities?: Identities;
  /** An earlier download whose vmail tree this download starts from. */
  reused?: string;
}

export interface EngineUi {
  /** Short progress lines for the screen (the log gets everything). */
  progress: (line: string) => void;
  /** A terminal: rsync shows a progress bar. */
  tty?: boolean;
}

export interface RestoreReport {
  name: string;
  downloadedTo?: string;
  restored: string[];
  skipped: string[];
  containers?: { up: number; total: number; down: string[] };
  /** Bytes that came from the Storage Box (on the wire) and from this host's own copies. */
  fetched?: { fromBox: number; fromHost: number; sources: string[] };
  next: string[];
}

/** The report line a person reads: how much of the download travelled. */
export const fetchedLine = (f: NonNullable<RestoreReport['fetched']>) =>
  `fetched ${bytes(f.fromBox)} from the Storage Box, ${bytes(f.fromHost)} from this host${f.fromHost && f.sources.length ? ` (${f.sources.join(', ')})` : ''}`;

const VMAIL = 'vmail';

/** The compose project of this host's mailcow, for a restore that read no mailcow.conf (--download-only). */
function liveProject(mailcowPath: string): string {
  try {
    return readMailcowConf(mailcowPath).COMPOSE_PROJECT_NAME ?? 'mailcowdockerized';
  } catch {
    return 'mailcowdockerized';
  }
}
const archiveComponents = (cs: Component[]) => cs.filter((c) => c !== 'vmail');

/** Where a restore downloads to (a folder per backup inside). */
export const restoreDir = (ctx: RunContext) => join(ctx.config.TEMP_BACKUP_DIR, 'restore');

/** Published backup names on the box (staging folders and foreign names never show). */
export async function publishedNames(ctx: RunContext): Promise<string[]> {
  const entries = await ctx.box.list(ctx.config.HETZNER_REMOTE_PATH);
  return publishedBackups(entries).reverse();
}

/** `NAME` or `latest` among the backups the snapshot holds (read-only: none is known damaged there). */
async function resolveInSnapshot(ctx: RunContext, want: string, snapshot: string): Promise<ReturnType<typeof resolveBackup>> {
  const held = await backupsInSnapshot(ctx, snapshot);
  if (held.length === 0) {
    const snaps = (await findSnapshots(ctx)).map((s) => s.name);
    return { ok: false, reason: snaps.includes(snapshot) ? `the snapshot ${snapshot} holds no backup in ${ctx.config.HETZNER_REMOTE_PATH}` : `there is no snapshot ${snapshot} visible on the Storage Box (${snaps.length ? `newest: ${snaps[0]}` : 'none visible to this account'}); see 'restore-from-hetzner --list --snapshots'` };
  }
  const r = resolveBackup(held, want);
  return r.ok ? r : { ok: false, reason: r.reason.replace('the published backups', `the backups in the snapshot ${snapshot}`) };
}

/** The box must be connected. Reads only the backup's small files; changes nothing on the host. */
export async function prepareRestore(ctx: RunContext, req: RestoreRequest, askIdentity?: AskIdentity): Promise<Prepared> {
  const c = ctx.config;
  const known = await loadScrubState(c.STATE_DIR);
  const v = (n: string) => verificationOf(known[n]);
  const ref = parseBackupRef(req.backup);
  if ('error' in ref) throw new UserError('config', `--backup ${req.backup}: ${ref.error}`);
  const r = ref.snapshot ? await resolveInSnapshot(ctx, ref.name, ref.snapshot) : resolveBackup(await publishedNames(ctx), ref.name, (n) => v(n).state === 'damaged');
  if (!r.ok) throw new UserError('config', r.reason);
  const name = r.name;
  const remoteFolder = ref.snapshot ? snapshotBackupFolder(ref.snapshot, c.HETZNER_REMOTE_PATH, name) : `${c.HETZNER_REMOTE_PATH}/${name}`;
  if (r.skipped.length) ctx.log.warn(`'latest' skips ${r.skipped.join(', ')}: known DAMAGED (see 'backup-to-hetzner list'); restoring ${name}, the newest backup not known to be damaged`);
  const integrity = ref.snapshot
    ? { status: 'OK' as const, title: 'backup', detail: `${name} as the snapshot ${ref.snapshot} holds it (read-only: nobody could change it since); the download is verified against its own checksums.sha256 before anything is changed` }
    : backupIntegrityCheck(name, v(name), r.skipped.map((n) => ({ name: n, v: v(n) })));
  const mailboxDirs = req.mailboxes.map((m) => {
    const d = mailboxDir(m);
    if (!d) throw new UserError('config', `--mailbox ${m} is not a mailbox address (user@domain)`);
    return d;
  });
  const location = req.downloadOnly ? resolve(req.downloadOnly) : restoreDir(ctx);
  await mkdir(location, { recursive: true, mode: 0o700 });
  // mailcow's script must be offered this backup and only it.
  if (req.downloadOnly) {
    const n = (await readdir(location)).find((n) => n.startsWith('mailcow-') && n !== name);
    if (n) throw new UserError('config', `${location} already holds ${n}; give --download-only an empty folder (mailcow's script would offer both)`);
  }
  const reused = req.downloadOnly ? undefined : await reuseEarlierDownload(ctx, location, name, { vmail: req.components.includes('vmail'), mailboxDirs });
  const folder = join(location, name);
  const mailWanted = req.components.includes('vmail') || req.mailboxes.length > 0;
  const needCryptForCheck = mailWanted && !req.components.includes('crypt') && !req.downloadOnly;
  ctx.log.info(`reading ${name}'s record, checksums and mailcow.conf from the Storage Box`);
  const { record, checksums } = await fetchIndex(ctx, name, remoteFolder, folder);
  // An encrypted backup: the identity must decrypt its mailcow.conf before anything big is fetched.
  const identities = await identityFor(ctx, name, remoteFolder, folder, record, checksums, req, askIdentity);
  await verifyDownload(ctx.exec, folder, checksums, (p) => META_FILES.includes(p) && existsSync(join(folder, p)), ctx.signal, identities);
  if (needCryptForCheck) {
    await fetchSmall(ctx, remoteFolder, folder, ['crypt']);
    await verifyDownload(ctx.exec, folder, checksums, (p) => isArchivePart(p, 'crypt', ARCHIVE_BASE.crypt) && existsSync(join(folder, p)), ctx.signal, identities);
  }
  const backupConf = existsSync(join(folder, 'mailcow.conf')) ? parse(await readFile(join(folder, 'mailcow.conf'), 'utf8')) : {};
  for (const s of secretsOf(backupConf)) ctx.log.addSecret(s);

  const choices: Choices = { components: req.components, mailboxes: req.mailboxes, mode: req.mode };
  const missingMailboxes = req.mailboxes.filter((m, i) => ![...checksums.keys()].some((p) => p.startsWith(`${VMAIL}/${mailboxDirs[i]}/`)));
  // Only the chosen mailboxes are downloaded; the whole tree's size only when theirs is unknown.
  const mailboxBytes = req.mailboxes.length ? (chosenMailboxBytes(backupMailboxes(record, checksums.keys()), req.mailboxes) ?? record.vmail?.bytes ?? 0) : 0;
  const needBytes = bytesNeeded(record, choices, mailboxBytes);
  const free = await freeBytes(location);

  if (req.downloadOnly) {
    const checks: Check[] = preRestoreChecks(record, choices, {
      liveConf: backupConf,
      backupConf,
      backupArch: hostArchMarker(process.arch),
      hostArch: hostArchMarker(process.arch),
      cryptKeysMatch: true,
      freeBytes: free,
      needBytes,
      downloadDir: location,
      missingMailboxes,
    })
      .filter((ch) => ['components', 'mailboxes', 'local disk'].includes(ch.title))
      .concat(encryptionCheck(identities));
    checks.unshift(integrity);
    return { reused, name, remoteFolder, record, choices, checks, plan: [`download ${name} into ${folder} and verify it${identities ? ', then decrypt it' : ''}${choices.components.includes('vmail') ? '; vmail is packed as backup_vmail.tar.zst' : ''}; nothing else is touched`], location, folder, checksums, request: req, identities };
  }

  const liveConf = readMailcowConf(c.MAILCOW_PATH);
  for (const s of secretsOf(liveConf)) ctx.log.addSecret(s);
  const backupArch = ['x86_64', 'aarch64'].find((a) => existsSync(join(folder, `.${a}`)));
  let cryptKeysMatch: boolean | undefined;
  if (needCryptForCheck) cryptKeysMatch = await compareCryptKeys(ctx, folder, liveConf.COMPOSE_PROJECT_NAME ?? 'mailcowdockerized');
  const replaceLossOf = req.mode === 'replace' && req.mailboxes.length ? await mailboxLoss(ctx, req.mailboxes, mailboxDirs, checksums, liveConf, backupConf) : undefined;
  const facts: HostFacts = { liveConf, backupConf, backupArch, hostArch: hostArchMarker(process.env.RESTORE_HOST_ARCH ?? process.arch), cryptKeysMatch, freeBytes: free, needBytes, downloadDir: location, missingMailboxes, replaceLoss: replaceLossOf };
  const checks = [integrity, ...preRestoreChecks(record, choices, facts), ...encryptionCheck(identities)];
  return { name, remoteFolder, record, choices, checks, plan: planText(record, choices, facts, c.MAILCOW_PATH), facts, location, folder, checksums, request: req, identities, reused };
}

/** Per mailbox, the live messages --mode replace would remove; a mailbox that cannot be listed is left out (the plan says so). */
async function mailboxLoss(ctx: RunContext, mailboxes: string[], dirs: string[], checksums: Map<string, string>, liveConf: Record<string, string>, backupConf: Record<string, string>): Promise<Record<string, ReplaceLoss>> {
  const out: Record<string, ReplaceLoss> = {};
  const vol = await vmailVolume(ctx.exec, liveConf.COMPOSE_PROJECT_NAME ?? 'mailcowdockerized').catch((e) => ctx.log.warn(`cannot list the current mailboxes: ${errorText(e)}`));
  if (!vol) return out;
  const backupSub = backupConf.MAILDIR_SUB ?? 'Maildir';
  const liveSub = liveConf.MAILDIR_SUB ?? 'Maildir';
  for (const [i, m] of mailboxes.entries()) {
    const prefix = `${VMAIL}/${dirs[i]}/${backupSub}/`;
    const keys = backupMessageKeys([...checksums.keys()].filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length)));
    out[m] = replaceLoss(await liveMessages(join(vol, dirs[i]!, liveSub)), keys);
  }
  return out;
}

/** The backup's small files (record, manifest, mailcow.conf; `archives` too) into `folder`. */
const fetchSmall = (ctx: RunContext, remoteFolder: string, folder: string, archives: Component[]) =>
  downloadBackup(ctx.exec, ctx.log, {
    target: ctx.box.target,
    remoteFolder,
    localFolder: folder,
    filters: downloadFilters({ components: [], mailboxDirs: [], vmailDir: VMAIL, archives }),
  });

/** Fetches a backup's small files and reads its record and manifest (checked against checksums.sha256). */
export async function fetchIndex(ctx: RunContext, name: string, remoteFolder: string, folder: string): Promise<{ record: BackupRecord; checksums: Map<string, string> }> {
  await fetchSmall(ctx, remoteFolder, folder, []);
  const record = JSON.parse(await readFile(join(folder, RECORD_FILE), 'utf8')) as BackupRecord;
  if (record.name !== name) throw new UserError('verify', `${name}/backup.json names ${record.name}; the backup folder was renamed or damaged`);
  return { record, checksums: await readChecksums(folder) };
}

/** The mailboxes a published backup holds (for the wizard), each marked whether this host has it. */
export async function listBackupMailboxes(ctx: RunContext, name: string, remoteFolder = `${ctx.config.HETZNER_REMOTE_PATH}/${name}`): Promise<BackupMailbox[]> {
  const { record, checksums } = await fetchIndex(ctx, name, remoteFolder, join(restoreDir(ctx), name));
  const list = backupMailboxes(record, checksums.keys());
  let vol: string | undefined;
  try {
    vol = await volumePath(ctx.exec, readMailcowConf(ctx.config.MAILCOW_PATH).COMPOSE_PROJECT_NAME ?? 'mailcowdockerized', 'vmail');
  } catch (e) {
    ctx.log.debug(`cannot find the live vmail volume: ${errorText(e)}`);
  }
  if (vol) for (const m of list) m.onHost = existsSync(join(vol, m.dir));
  return list;
}

const encryptionCheck = (ids?: Identities): Check[] =>
  ids ? [{ status: 'OK', title: 'encryption', detail: `age: ${ids.path} (${ids.recipients.map(recipientFingerprint).join(', ')}) decrypts this backup; its files are decrypted after the download is verified` }] : [];

/** The identity for an encrypted backup: from --identity, or asked; checked on the small mailcow.conf.age. */
async function identityFor(ctx: RunContext, name: string, remoteFolder: string, folder: string, record: BackupRecord, checksums: Map<string, string>, req: RestoreRequest, ask?: AskIdentity): Promise<Identities | undefined> {
  const encrypted = [...checksums.keys()].filter(isEncryptedName);
  if (encrypted.length === 0) {
    if (req.identity) ctx.log.info(`${name} is not encrypted: --identity is not needed`);
    return undefined;
  }
  const fps = record.encryption?.recipients.map((r) => r.fingerprint) ?? [];
  const path = req.identity ?? (ask ? await ask(name, fps) : undefined);
  if (!path) throw new UserError('config', `${name} is encrypted with age (to ${fps.join(', ') || 'unknown recipients'}): give its private key with --identity PATH (the identity file made by age-keygen)`);
  const ids = await loadIdentities(path);
  for (const k of ids.keys) ctx.log.addSecret(k); // never in a log line, whatever goes wrong
  const mine = ids.recipients.map(recipientFingerprint);
  // mailcow.conf.age is always there (mailcow's script copies mailcow.conf) and already fetched.
  const probe = encrypted.includes('mailcow.conf.age') ? 'mailcow.conf.age' : encrypted[0]!;
  if (!existsSync(join(folder, probe))) await downloadBackup(ctx.exec, ctx.log, { target: ctx.box.target, remoteFolder, localFolder: folder, filters: [`--include=/${probe}`, '--exclude=*'] });
  try {
    await verifyDownload(ctx.exec, folder, checksums, (p) => p === probe, ctx.signal, ids);
  } catch (e) {
    if (!isUserError(e) || e.kind !== 'preflight') throw e;
    throw new UserError('preflight', `wrong age key: the identity ${path} (${mine.join(', ')}) is not one ${name} was encrypted to (${fps.join(', ') || 'see its backup.json'}); nothing but the backup's small metadata was downloaded and nothing on this host was changed`);
  }
  ctx.log.info(`the age identity ${path} (${mine.join(', ')}) decrypts ${name}`);
  return ids;
}

async function compareCryptKeys(ctx: RunContext, folder: string, project: string): Promise<boolean | undefined> {
  try {
    const vol = await volumePath(ctx.exec, project, 'crypt');
    if (!vol) return undefined;
    const live = await readFile(join(vol, 'ecpubkey.pem'), 'utf8').catch(() => undefined);
    const archive = ['zst', 'gz'].map((e) => join(folder, `backup_crypt.tar.${e}`)).find((f) => existsSync(f));
    if (!archive) return undefined;
    const r = await ctx.exec('tar', [archive.endsWith('.zst') ? '--use-compress-program=zstd -d' : '-z', '-xOf', archive, '--wildcards', '*ecpubkey.pem'], { what: 'reading the backup\'s crypt key', capture: true, timeoutMs: 60_000 });
    if (live === undefined) return false;
    return r.stdout.trim() === live.trim();
  } catch (e) {
    ctx.log.debug(`crypt key comparison failed: ${errorText(e)}`);
    return undefined;
  }
}

/** Downloads, verifies, and (unless download-only) restores. Throws before touching anything on a FAIL. */
export async function executeRestore(ctx: RunContext, prep: Prepared, ui: EngineUi): Promise<RestoreReport> {
  const c = ctx.config;
  const fails = prep.checks.filter((ch) => ch.status === 'FAIL');
  if (fails.length) throw new UserError('preflight', `pre-restore checks failed: ${fails.map((f) => `${f.title}: ${f.detail}`).join('; ')}; nothing was changed`, fails.map((f) => `FAIL ${f.title}: ${f.detail}`));
  const { record, choices, folder, name } = prep;
  const mailboxDirs = choices.mailboxes.map((m) => mailboxDir(m)!);
  const report: RestoreReport = { name, restored: [], skipped: [], next: [] };
  let keep = Boolean(prep.request.keepDownload || prep.request.downloadOnly);
  let touched = false;
  let lock: HeldLock | undefined;
  try {
    // Step 6: download and verify. Nothing on the host changes before this succeeded. Files this
    // host already holds are copied from it; the manifest decides whether they are used.
    const project = prep.facts?.liveConf.COMPOSE_PROJECT_NAME ?? liveProject(c.MAILCOW_PATH);
    const local = await restoreBasis(ctx, { name, wantsMail: choices.components.includes('vmail') || mailboxDirs.length > 0, project });
    const remoteFolder = prep.remoteFolder;
    // Asked of every path several times: the mail's (nearly all of them) are answered first.
    const wantsVmail = choices.components.includes('vmail');
    const archived = archiveComponents(choices.components);
    const wanted = (p: string) =>
      p.startsWith(`${VMAIL}/`)
        ? wantsVmail || mailboxDirs.some((d) => p.startsWith(`${VMAIL}/${d}/`))
        : META_FILES.includes(p) || archived.some((comp) => isArchivePart(p, comp, ARCHIVE_BASE[comp]));
    const v = await fetchVerified(ctx, ui, { name, remoteFolder, folder, checksums: prep.checksums, components: choices.components, mailboxDirs, vmailDir: VMAIL, wanted, local, keep, identities: prep.identities });
    ctx.log.info(`verified ${v.files} files and ${v.archives} archives of ${name}`);
    report.fetched = { fromBox: v.fromBox, fromHost: v.fromHost, sources: [...(prep.reused ? [`the earlier download of ${prep.reused}`] : []), ...local.sources] };
    ctx.log.info(fetchedLine(report.fetched));

    if (prep.request.downloadOnly) {
      if (choices.components.includes('vmail')) {
        ui.progress('packing vmail as backup_vmail.tar.zst');
        await packVmail(ctx.exec, folder, join(folder, VMAIL), record, Number(c.THREADS) || 1);
        await rm(join(folder, VMAIL), { recursive: true, force: true });
      }
      report.downloadedTo = prep.location;
      report.next.push(`hand it to mailcow's own script: cd ${c.MAILCOW_PATH} && MAILCOW_BACKUP_LOCATION=${prep.location} ./helper-scripts/backup_and_restore.sh restore`);
      return report;
    }
    if (ctx.signal.aborted) throw new UserError('interrupted', 'interrupted before anything was restored; nothing on this host was changed');
    lock = await lockForRestore(ctx, (l) => ui.progress(l));
    // mailcow's script restores each archive in `docker run --name mailcow-backup` too.
    if (choices.components.some((x) => x !== 'vmail')) await clearLeftoverContainer(ctx, lock.tookOver, 'nothing was restored');

    // Step 7: one component at a time; an interrupt finishes the current one, then stops.
    // No abort signal and a process group of their own: Ctrl-C lets the current step finish.
    const applyExec = createExec(undefined, ctx.log.redact, { ownProcessGroup: true });
    const steps: { what: string; run: () => Promise<void> }[] = [];
    for (const comp of archiveOrder(choices.components)) {
      steps.push({
        what: comp,
        run: async () => {
          const r = await runMailcowRestore(ctx.log, { mailcowPath: c.MAILCOW_PATH, location: prep.location, folder, component: comp, threads: Number(c.THREADS) || 1, ownProcessGroup: true, onProgress: (l) => ui.progress(`  ${comp}: ${l}`) });
          (r.outcome === 'restored' ? report.restored : report.skipped).push(r.outcome === 'restored' ? comp : `${comp} (${r.notes.join('; ')})`);
        },
      });
    }
    if (choices.components.includes('vmail'))
      steps.push({
        what: 'vmail',
        run: async () => {
          // --keep-download promises the whole verified download stays: then the tree is copied.
          const aside = prep.request.keepDownload ? undefined : join(folder, '.vmail-replaced');
          await restoreVmail(applyExec, ctx.log, { mailcowPath: c.MAILCOW_PATH, project, treeDir: join(folder, VMAIL), record, aside, progress: (l) => ui.progress(`  ${l}`) });
          report.restored.push('vmail');
        },
      });
    const backupSub = prep.facts!.backupConf.MAILDIR_SUB ?? 'Maildir';
    const liveSub = prep.facts!.liveConf.MAILDIR_SUB ?? 'Maildir';
    choices.mailboxes.forEach((m, i) =>
      steps.push({
        what: `mailbox ${m}`,
        run: async () => {
          const r = await restoreMailbox(applyExec, ctx.log, { mailcowPath: c.MAILCOW_PATH, project, address: m, userDir: join(folder, VMAIL, mailboxDirs[i]!), record, mode: choices.mode, backupSub, liveSub });
          report.restored.push(`mailbox ${m} (${choices.mode}, ${r.files} files${choices.mode === 'merge' ? `, folder ${r.target.split('/').pop()!.slice(1)}` : ''})`);
        },
      }),
    );
    const rerun = (from: number) => steps.slice(from).filter((s) => !s.what.startsWith('mailbox')).map((s) => s.what).join(',') || '...';
    for (let i = 0; i < steps.length; i++) {
      if (ctx.signal.aborted) {
        keep = true;
        throw Object.assign(
          new UserError(
            'interrupted',
            `interrupted during the restore: restored ${report.restored.join(', ') || 'nothing'}; NOT restored: ${steps.slice(i).map((s) => s.what).join(', ')}. Every container the restore stopped was started again. The verified download stays in ${folder}: run the command again with --components ${rerun(i)} to finish`,
          ),
          { phase: 'restore' },
        );
      }
      const what = steps[i]!.what;
      ui.progress(`restoring ${what}`);
      touched = true;
      try {
        await steps[i]!.run();
      } catch (e) {
        // The host has changed: say exactly how, whatever went wrong.
        keep = true;
        const rest = steps.slice(i + 1).map((s) => s.what);
        // mailcow's script stops containers itself and a failure can leave them stopped: name them.
        const stopped = await containerStates(applyExec, c.MAILCOW_PATH).then((st) => st.down, () => undefined);
        const leftDown = stopped === undefined ? ' Check `docker compose ps` in the mailcow folder for containers left stopped.' : stopped.length ? ` Containers not running now: ${stopped.join(', ')} (\`docker compose up -d\` in ${c.MAILCOW_PATH} starts them).` : '';
        throw Object.assign(
          new UserError(
            isUserError(e) && e.kind !== 'interrupted' ? e.kind : 'failed',
            `restoring ${what} failed: ${errorText(e)}. Restored: ${report.restored.join(', ') || 'nothing'}; ${what} may be half restored; NOT restored: ${rest.join(', ') || 'nothing else'}. The verified download stays in ${folder}: fix the cause and run the command again with --components ${rerun(i)}.${leftDown}`,
            isUserError(e) ? e.details : [],
          ),
          { phase: 'restore' },
        );
      }
    }

    // Step 8: mailcow up?
    try {
      report.containers = await containerStates(applyExec, c.MAILCOW_PATH);
    } catch (e) {
      ctx.log.warn(`docker compose ps failed: ${errorText(e)}`);
    }
    report.next.push(
      'log in to the mailcow UI and open a few mailboxes (webmail and an IMAP client)',
      'send a test mail in and out; check the postfix queue (mailq) if postfix was restored',
      ...(choices.components.includes('mysql') ? ['the DB credentials in mailcow.conf are now the backup\'s: keep that mailcow.conf'] : []),
      ...(prep.facts && prep.facts.backupConf.MAILCOW_HOSTNAME !== prep.facts.liveConf.MAILCOW_HOSTNAME ? ['point DNS (MX, A/AAAA, autodiscover) at this host and check the certificate'] : []),
    );
    return report;
  } catch (e) {
    if (touched) keep = true;
    throw e;
  } finally {
    await lock?.release();
    if (!keep) await rm(folder, { recursive: true, force: true }).catch(() => undefined);
    else if (!prep.request.downloadOnly) report.downloadedTo = folder;
  }
}

/** mailcow's containers by `docker compose ps --all`: how many run, and the names of those that do not. */
async function containerStates(exec: Exec, mailcowPath: string): Promise<{ up: number; total: number; down: string[] }> {
  const ps = await compose(exec, mailcowPath, ['ps', '--all', '--format', 'table {{.Name}} {{.Status}}'], 'docker compose ps', 60_000);
  const rows = ps.stdout.split('\n').slice(1).filter((l) => l.trim());
  const down = rows.filter((l) => !/\bUp\b|running/i.test(l)).map((l) => l.split(/\s+/)[0]!);
  return { up: rows.length - down.length, total: rows.length, down };
}
