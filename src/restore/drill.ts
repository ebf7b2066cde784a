// The restore drill: proves on this host that a published backup brings mail back, without
// touching the live mailcow. Everything happens in a private scratch folder under TEMP_BACKUP_DIR
// (0700): the backup is fetched (a standby's copy as basis), every file checked against the
// manifest, archives tested, decrypted when an identity is at hand, the database archive prepared
// and opened in a throwaway container of mailcow's SQL image, its mailboxes set against the mail
// tree, the crypt keys against the mail. The scratch folder and the containers go in `finally`.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { loadIdentities, type Identities } from '../adapters/age.js';
import { createExec } from '../adapters/exec.js';
import { freeBytes } from '../adapters/disk.js';
import { deadDrillContainers, prepareDatadir, queryDatadir, removeContainer, type DrillContainer } from '../adapters/drill-container.js';
import { alive } from '../adapters/lock.js';
import { messageHeads } from '../adapters/mail-crypt.js';
import type { RunContext } from '../backup/context.js';
import { loadScrubState } from '../backup/scrub.js';
import { COMPONENTS } from '../config/schema.js';
import { errorText, isUserError, UserError } from '../errors.js';
import { isEncryptedName } from '../plan/age-keys.js';
import { isArchivePart } from '../plan/archive-tree.js';
import { ARCHIVE_BASE } from '../adapters/mailcow.js';
import {
  DRILL_DIR_PREFIX,
  drillContainerName,
  drillDirName,
  drillScope,
  mailCryptKeyIdOf,
  parseDbOutput,
  setAgainstVmail,
  sqlImageOf,
  verdictOf,
  type DbFacts,
  type DrillCheck,
  type DrillOutcome,
  drillNeed,
} from '../plan/drill.js';
import { bytes, count } from '../plan/human.js';
import { mailboxTotals } from '../plan/mailboxes.js';
import { RECORD_FILE } from '../plan/manifest.js';
import { isBackupName } from '../plan/names.js';
import { verificationOf } from '../plan/verification.js';
import { downloadBackup, downloadFilters } from './download.js';
import { publishedNames } from './engine.js';
import { resolveBackup, type BackupRecord } from './plan.js';
import { checkHashes, readChecksums, verifyDownload } from './verify-local.js';

const VMAIL = 'vmail';
const HOUR = 3_600_000;

export interface DrillRequest {
  backup: string;
  identity?: string;
}

/** Containers and scratch folders that a killed drill left behind; removed before this one starts. */
async function clearLeftovers(ctx: RunContext): Promise<void> {
  try {
    for (const n of await deadDrillContainers(ctx.exec)) {
      await removeContainer(ctx.exec, n);
      ctx.log.warn(`removed the docker container ${n} that a killed drill left behind`);
    }
  } catch (e) {
    ctx.log.warn(`cannot look for containers of earlier drills: ${errorText(e)}`);
  }
  for (const d of await readdir(ctx.config.TEMP_BACKUP_DIR).catch(() => [] as string[])) {
    const pid = d.startsWith(DRILL_DIR_PREFIX) ? Number(d.slice(DRILL_DIR_PREFIX.length)) : NaN;
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) {
      await rm(join(ctx.config.TEMP_BACKUP_DIR, d), { recursive: true, force: true });
      ctx.log.info(`removed the scratch folder ${d} that a killed drill left behind`);
    }
  }
}

/** A standby's verified copy of this backup, or else its newest one: rsync copies what matches. */
async function standbyBasis(ctx: RunContext, name: string): Promise<{ dir: string; how: 'copy' }[]> {
  const dir = ctx.config.STANDBY_DIR;
  const copies = (await readdir(dir).catch(() => [] as string[])).filter(isBackupName).sort();
  const pick = copies.includes(name) ? name : copies[copies.length - 1];
  if (!pick) return [];
  ctx.log.info(`fetching with ${join(dir, pick)} as basis: only what it lacks comes from the box`);
  return [{ dir: join(dir, pick), how: 'copy' }];
}

/** Every file of the fetched mail tree with its size (for the per-mailbox totals). */
async function treeEntries(root: string, rel: string, out: { path: string; size: number }[]): Promise<void> {
  for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory()) await treeEntries(root, p, out);
    else if (e.isFile()) out.push({ path: p, size: (await lstat(join(root, p))).size });
  }
}

async function openssl(ctx: RunContext, args: string[], what: string): Promise<string> {
  return (await ctx.exec('openssl', args, { what, capture: true, timeoutMs: 60_000 })).stdout;
}

/** Runs the drill; FAIL checks make the verdict, errors that stop it (the box, bad flags) are thrown. */
export async function runDrill(ctx: RunContext, req: DrillRequest, say: (line: string) => void): Promise<DrillOutcome> {
  const c = ctx.config;
  await mkdir(c.TEMP_BACKUP_DIR, { recursive: true, mode: 0o700 });
  await clearLeftovers(ctx);
  const known = await loadScrubState(c.STATE_DIR);
  const r = resolveBackup(await publishedNames(ctx), req.backup, (n) => verificationOf(known[n]).state === 'damaged');
  if (!r.ok) throw new UserError('config', r.reason);
  const name = r.name;
  const checks: DrillCheck[] = [];
  const add = (status: DrillCheck['status'], title: string, detail: string) => {
    checks.push({ status, title, detail });
    say(`${status.padEnd(5)} ${title.padEnd(14)} ${detail}`);
  };
  const outcome: DrillOutcome = { backup: name, verdict: 'OK', messages: 0, bytes: 0, fetchMs: 0, checks };
  const scratch = join(c.TEMP_BACKUP_DIR, drillDirName(process.pid));
  const container = drillContainerName(process.pid);
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { mode: 0o700 });
  let started = false;
  try {
    const folder = join(scratch, name);
    const remoteFolder = `${c.HETZNER_REMOTE_PATH}/${name}`;
    ctx.log.info(`drill of ${name} in ${scratch}`);
    const t0 = Date.now();
    await downloadBackup(ctx.exec, ctx.log, { target: ctx.box.target, remoteFolder, localFolder: folder, filters: downloadFilters({ components: [], mailboxDirs: [], vmailDir: VMAIL, archives: [] }) });
    const record = JSON.parse(await readFile(join(folder, RECORD_FILE), 'utf8')) as BackupRecord;
    const checksums = await readChecksums(folder);

    // 6. Room for the fetch and the opened database; too little: the database and a sample.
    const need = drillNeed(record.bytes ?? 0, record.archives.find((a) => a.component === 'mysql'));
    const free = await freeBytes(scratch);
    const inBackup = mailboxTotals([...checksums.keys()].map((path) => ({ path, size: 0 })), VMAIL);
    const recorded = record.vmail?.mailboxes ?? {};
    const scope = drillScope(need, free, [...inBackup.keys()].map((dir) => ({ dir, bytes: recorded[dir]?.bytes ?? 0 })));
    if (scope.full) add('OK', 'disk', `${bytes(free)} free in ${c.TEMP_BACKUP_DIR}, the drill needs about ${bytes(need)}`);
    else add('WARN', 'disk', `only ${bytes(free)} free in ${c.TEMP_BACKUP_DIR}, a full drill needs about ${bytes(need)}: checked the database, the archives and ${count(scope.mailboxes.length, 'mailbox', 'mailboxes')} (${scope.mailboxes.join(', ')}); skipped the mail of ${count(scope.skipped, 'mailbox', 'mailboxes')}`);

    // 1. Fetch and verify.
    const wantedMail = (p: string) => !p.startsWith(`${VMAIL}/`) || scope.full || scope.mailboxes.some((d) => p.startsWith(`${VMAIL}/${d}/`));
    await downloadBackup(ctx.exec, ctx.log, {
      target: ctx.box.target,
      remoteFolder,
      localFolder: folder,
      filters: downloadFilters({ components: scope.full ? [...COMPONENTS] : COMPONENTS.filter((x) => x !== 'vmail'), mailboxDirs: scope.full ? [] : scope.mailboxes, vmailDir: VMAIL }),
      basis: await standbyBasis(ctx, name),
    });
    outcome.fetchMs = Date.now() - t0;
    const paths = [...checksums.keys()].filter(wantedMail);
    const encrypted = paths.filter(isEncryptedName);
    const identityPath = req.identity ?? c.AGE_IDENTITY_FILE;
    let ids: Identities | undefined;
    if (encrypted.length && identityPath) {
      ids = await loadIdentities(identityPath);
      for (const k of ids.keys) ctx.log.addSecret(k);
    }
    try {
      if (encrypted.length && !ids) await checkHashes(folder, checksums, encrypted, ctx.signal);
      const v = await verifyDownload(ctx.exec, folder, checksums, (p) => wantedMail(p) && (ids !== undefined || !isEncryptedName(p)), ctx.signal, ids);
      add('OK', 'files', `${count(paths.length, 'file')} match checksums.sha256; ${count(v.archives, 'archive')} pass zstd -t${encrypted.length && !ids ? ` (the ${count(encrypted.length, 'encrypted file')} only by their hashes)` : ''}`);
    } catch (e) {
      if (!isUserError(e) || !['verify', 'preflight'].includes(e.kind)) throw e;
      add('FAIL', e.kind === 'preflight' ? 'encryption' : 'files', e.message.replace(/; nothing on this host was changed|\(nothing on this host was changed\)/g, ''));
      return finish(outcome);
    }
    if (encrypted.length) {
      if (ids) add('OK', 'encryption', `${count(encrypted.length, 'file')} decrypted with ${ids.path}`);
      else add('WARN', 'encryption', `could not prove decryption: ${count(encrypted.length, 'file')} are age-encrypted and no identity was given (--identity PATH or AGE_IDENTITY_FILE); the database and the crypt keys were not opened`);
    }
    const plain = (file: string) => (existsSync(join(folder, file)) ? join(folder, file) : undefined);
    const conf = plain('mailcow.conf') ? parse(await readFile(join(folder, 'mailcow.conf'), 'utf8')) : undefined;

    // 3. The database, opened as mailcow's restore would meet it.
    let db: DbFacts | undefined;
    const sqlArchive = plain('backup_mariadb.tar.zst') ?? plain('backup_mariadb.tar.gz');
    if (sqlArchive) {
      const sqlDir = join(scratch, 'sql');
      const runDir = join(scratch, 'run');
      await mkdir(sqlDir, { mode: 0o700 });
      await mkdir(runDir, { mode: 0o700 });
      await ctx.exec('tar', [sqlArchive.endsWith('.zst') ? '--use-compress-program=zstd -d' : '-z', '-xf', sqlArchive, '-C', sqlDir], { what: 'extracting the database archive', timeoutMs: 6 * HOUR });
      const datadir = join(sqlDir, 'backup_mariadb');
      const compose = await readFile(join(c.MAILCOW_PATH, 'docker-compose.yml'), 'utf8').catch(() => '');
      const image = sqlImageOf(compose);
      if (!image) throw new UserError('failed', `cannot tell mailcow's SQL image: ${join(c.MAILCOW_PATH, 'docker-compose.yml')} names no mariadb:… or mysql:… image (check MAILCOW_PATH)`);
      const ct: DrillContainer = { name: container, image, datadir, rundir: runDir };
      const t1 = Date.now();
      say(`opening the database in the throwaway container ${container} (${image}, no network)`);
      started = true;
      try {
        await prepareDatadir(ctx.exec, ct, 6 * HOUR);
        db = parseDbOutput(await queryDatadir(ctx.exec, ct, conf?.DBNAME || 'mailcow', HOUR));
        outcome.openMs = Date.now() - t1;
        if (!db) add('FAIL', 'database', `the prepared database opens, but it holds no mailcow tables domain, mailbox, alias in ${conf?.DBNAME || 'mailcow'}`);
        else {
          const active = db.mailboxes.filter((m) => m.active !== 0).length;
          add('OK', 'database', `prepared and opened with ${image}: ${count(db.domains, 'domain')}, ${count(db.mailboxes.length, 'mailbox', 'mailboxes')} (${active} active, ${db.mailboxes.length - active} inactive), ${count(db.aliases, 'alias', 'aliases')}`);
          outcome.domains = db.domains;
          outcome.mailboxes = db.mailboxes.length;
        }
      } catch (e) {
        if (!isUserError(e) || e.kind === 'interrupted' || ctx.signal.aborted) throw e;
        add('FAIL', 'database', `the database archive does not open: ${e.message}${e.details.length ? ` (${e.details.filter((l) => l.trim()).slice(-3).join(' | ')})` : ''}`);
      }
    } else if (!record.components.includes('mysql')) add('WARN', 'database', 'the backup holds no database (BACKUP_COMPONENTS without mysql): a restore would have no mailboxes');
    else if (!encrypted.some((p) => isArchivePart(p, 'mysql', ARCHIVE_BASE.mysql))) add('FAIL', 'database', 'backup_mariadb.tar.zst is missing from the backup');

    // 4. The mail tree against the database.
    const entries: { path: string; size: number }[] = [];
    await treeEntries(folder, VMAIL, entries);
    const fetched = mailboxTotals(entries, VMAIL);
    for (const t of fetched.values()) (outcome.messages += t.messages), (outcome.bytes += t.bytes ?? 0);
    if (db) {
      const { missing, orphans } = setAgainstVmail(db.mailboxes, inBackup);
      if (missing.length) add('FAIL', 'mailboxes', `${count(missing.length, 'mailbox', 'mailboxes')} in the database ${missing.length === 1 ? 'has' : 'have'} no mail folder in the backup: ${missing.slice(0, 10).map((m) => `${m.address} (vmail/${m.domain}/${m.localPart} missing)`).join(', ')}${missing.length > 10 ? ', …' : ''}`);
      else add('OK', 'mailboxes', `every one of the ${count(db.mailboxes.length, 'mailbox', 'mailboxes')} has its mail folder: ${outcome.messages.toLocaleString('en-US')} messages, ${bytes(outcome.bytes)}${scope.full ? '' : ' in the sampled mailboxes'}`);
      if (orphans.length) add('WARN', 'mail folders', `${count(orphans.length, 'mail folder')} without a mailbox in the database (mail of deleted mailboxes?): ${orphans.slice(0, 10).join(', ')}${orphans.length > 10 ? ', …' : ''}`);
    }
    for (const [dir, t] of [...fetched].sort()) ctx.log.info(`  ${dir}: ${count(t.messages, 'message')}, ${bytes(t.bytes ?? 0)}`);

    // 4. The crypt keys: a pair, and the key the mail was encrypted for.
    const cryptArchive = plain('backup_crypt.tar.zst') ?? plain('backup_crypt.tar.gz');
    if (cryptArchive) {
      const cryptDir = join(scratch, 'crypt');
      await mkdir(cryptDir, { mode: 0o700 });
      await ctx.exec('tar', [cryptArchive.endsWith('.zst') ? '--use-compress-program=zstd -d' : '-z', '-xf', cryptArchive, '-C', cryptDir], { what: 'extracting the crypt archive', timeoutMs: HOUR });
      const priv = join(cryptDir, 'crypt', 'ecprivkey.pem');
      const pub = join(cryptDir, 'crypt', 'ecpubkey.pem');
      if (!existsSync(priv) || !existsSync(pub)) add('FAIL', 'crypt keys', 'backup_crypt.tar.zst holds no ecprivkey.pem/ecpubkey.pem: mail_crypt mail could not be read');
      else {
        const fromPriv = await openssl(ctx, ['pkey', '-in', priv, '-pubout'], 'deriving the public key of the backup\'s crypt key');
        const stored = await openssl(ctx, ['pkey', '-pubin', '-in', pub, '-pubout'], 'reading the backup\'s public crypt key');
        if (fromPriv.trim() !== stored.trim()) add('FAIL', 'crypt keys', 'ecprivkey.pem and ecpubkey.pem in the backup are not a pair: dovecot could not decrypt the mail');
        else {
          // dovecot's key id: SHA-256 of the public key's DER with the point compressed
          const compressed = await openssl(ctx, ['ec', '-pubin', '-in', pub, '-conv_form', 'compressed'], 'the crypt key id');
          const keyId = createHash('sha256').update(pemBody(compressed)).digest('hex');
          const heads = await messageHeads(join(folder, VMAIL), 512);
          const ids = heads.map(mailCryptKeyIdOf).filter((x): x is string => x !== undefined);
          const other = ids.filter((id) => id !== keyId);
          if (other.length) add('FAIL', 'crypt keys', `${other.length} of ${ids.length} sampled encrypted messages were encrypted for key ${other[0]!.slice(0, 16)}…, but the backup's crypt key is ${keyId.slice(0, 16)}…: that mail cannot be read after a restore`);
          else if (ids.length) add('OK', 'crypt keys', `the key pair matches, and ${ids.length} of ${heads.length} sampled messages are encrypted for it (${keyId.slice(0, 16)}…)`);
          else add('OK', 'crypt keys', `the key pair matches; none of ${heads.length} sampled messages is mail_crypt-encrypted`);
        }
      }
    } else if (!encrypted.some((p) => isArchivePart(p, 'crypt', ARCHIVE_BASE.crypt))) add(record.components.includes('vmail') ? 'WARN' : 'OK', 'crypt keys', 'the backup holds no crypt keys (backup_crypt.tar.zst)');
    return finish(outcome);
  } finally {
    // Not ctx.exec: after Ctrl-C or SIGTERM its signal is aborted and would stop the cleanup too.
    if (started) await removeContainer(createExec(undefined, ctx.log.redact), container).catch((e) => ctx.log.warn(`could not remove the drill's container ${container}: ${errorText(e)}; remove it: docker rm -f ${container}`));
    await rm(scratch, { recursive: true, force: true });
  }
}

function finish(o: DrillOutcome): DrillOutcome {
  o.verdict = verdictOf(o.checks);
  return o;
}

const pemBody = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
