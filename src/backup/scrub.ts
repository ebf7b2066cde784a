// `backup-to-hetzner verify` (the scrub): the box re-hashes published backups against their own
// checksums.sha256, nothing of the data is downloaded. Only files whose names the box shell
// cannot take (a maildir folder `.Entw&APw-rfe` holds `&`) are fetched with rsync and hashed
// here, since there is no local copy to compare against; the report says how many.
// Results are kept in STATE_DIR/scrub.json (lastScrub per backup) so a periodic scrub with a
// time budget can take the oldest-unverified backups first. The same record holds when the run
// that published a backup verified it (verifiedAt): what `list`, `status` and the restore show.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT } from '../cli/exit-codes.js';
import { UserError } from '../errors.js';
import { writeAtomic } from '../notify/status-file.js';
import { isShellSafe } from '../plan/box-command.js';
import { CHECKSUM_FILE, MANIFEST_DIR, readManifest } from '../plan/manifest.js';
import { isBackupName, publishedBackups } from '../plan/names.js';
import { remoteSpec, rsyncRemoteShell } from '../plan/transport-args.js';
import type { VerificationEntry, VerificationRecord } from '../plan/verification.js';
import type { RunContext } from './context.js';

export interface ScrubOptions {
  /** Exactly these backups (each must be a published backup name on the box). */
  names?: string[];
  /** The newest published backup. */
  latest?: boolean;
  /** Every published backup (also the default when nothing is selected). */
  all?: boolean;
  /** Stop starting new backups once this much time has passed; the rest are listed as skipped. */
  budgetMs?: number;
  /** Left out of the selection: the backup the daily run has just verified itself. */
  exclude?: string[];
}

export type FileProblem =
  | { path: string; kind: 'mismatch'; expected: string; actual: string }
  | { path: string; kind: 'missing' }
  /** A manifest line whose path escapes the backup folder or is not a plain relative path. */
  | { path: string; kind: 'bad-path' };

export interface BackupScrub {
  name: string;
  /** ok: every file matches; damaged: files differ or are missing; error: the scrub could not finish. */
  state: 'ok' | 'damaged' | 'error';
  /** Files listed in checksums.sha256. */
  files: number;
  /** Hashed by the box itself. */
  hashedOnBox: number;
  /** Names the box shell refuses: downloaded and hashed locally. */
  downloaded: number;
  problems: FileProblem[];
  /** For 'error', and for a missing/unreadable checksums.sha256 (then state is 'damaged'). */
  message?: string;
  ms: number;
  at: string;
}

export interface ScrubReport {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  results: BackupScrub[];
  /** Selected but not scrubbed because the time budget ran out (oldest-unverified order). */
  skipped: string[];
}

export type ScrubStateEntry = VerificationEntry;
export type ScrubState = VerificationRecord;

export const scrubStatePath = (stateDir: string) => join(stateDir, 'scrub.json');

export async function loadScrubState(stateDir: string): Promise<ScrubState> {
  try {
    const raw = JSON.parse(await readFile(scrubStatePath(stateDir), 'utf8')) as { backups?: ScrubState };
    const out: ScrubState = {};
    for (const [k, v] of Object.entries(raw.backups ?? {})) {
      if (isBackupName(k) && v && (typeof v.lastScrub === 'string' || typeof v.verifiedAt === 'string')) out[k] = v;
    }
    return out;
  } catch {
    return {};
  }
}

async function saveScrubState(stateDir: string, st: ScrubState): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeAtomic(scrubStatePath(stateDir), JSON.stringify({ backups: st }, null, 2) + '\n', 0o600);
}

/** The daily run verified `name` on the box before it published it (under the run's lock). */
export async function recordVerifiedAtPublish(stateDir: string, name: string, at: string): Promise<void> {
  const st = await loadScrubState(stateDir);
  st[name] = { ...st[name], verifiedAt: at };
  await saveScrubState(stateDir, st);
}

/** Backups never scrubbed first (oldest first), then by the time of their last scrub. */
export function scrubOrder(names: string[], st: ScrubState): string[] {
  return [...names].sort((a, b) => {
    const la = st[a]?.lastScrub ?? '';
    const lb = st[b]?.lastScrub ?? '';
    if (la !== lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/** A manifest path must be a plain relative path inside the backup folder. */
export function isPlainRelative(p: string): boolean {
  if (!p || p.startsWith('/') || p.includes('\0')) return false;
  return p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/**
 * Scrubs the selected published backups. The caller opens and closes the box connection
 * (`ctx.box.connect()` / `ctx.box.close()`), as for `list`; inside the daily run it is already open.
 * Throws UserError('config') for a NAME that is not a backup name, UserError('failed') for a NAME
 * that is not on the box. Damage is not an exception: see `report.ok` and each result's state.
 */
export async function runScrub(ctx: RunContext, opts: ScrubOptions = {}): Promise<ScrubReport> {
  const c = ctx.config;
  const root = c.HETZNER_REMOTE_PATH;
  const startedAt = ctx.now();
  const t0 = performance.now();
  for (const n of opts.names ?? []) {
    if (!isBackupName(n)) {
      throw new UserError('config', `'${n}' is not a backup name (mailcow-YYYY-MM-DD-HH-MM-SS); see 'backup-to-hetzner list'`);
    }
  }
  // Names read back from the box are untrusted: only the tool's own pattern is ever used.
  const entries = await ctx.box.list(root);
  const published = publishedBackups(entries);
  const st = await loadScrubState(c.STATE_DIR);
  const candidates = published.filter((n) => !opts.exclude?.includes(n));

  let selected: string[];
  if (opts.names?.length) {
    const missing = opts.names.filter((n) => !published.includes(n));
    if (missing.length) throw new UserError('failed', `no published backup named ${missing.join(', ')} on the Storage Box; see 'backup-to-hetzner list'`);
    selected = [...new Set(opts.names)];
  } else if (opts.latest) selected = candidates.slice(-1);
  else selected = scrubOrder(candidates, st);

  const results: BackupScrub[] = [];
  const skipped: string[] = [];
  await mkdir(c.TEMP_BACKUP_DIR, { recursive: true, mode: 0o700 });
  const tmp = await mkdtemp(join(c.TEMP_BACKUP_DIR, `scrub-${process.pid}-`));
  await chmod(tmp, 0o700);
  try {
    for (const name of selected) {
      if (opts.budgetMs !== undefined && results.length > 0 && performance.now() - t0 >= opts.budgetMs) {
        skipped.push(name);
        continue;
      }
      ctx.signal.throwIfAborted();
      const r = await scrubOne(ctx, root, name, join(tmp, name));
      results.push(r);
      const line = scrubLine(r);
      if (r.state === 'ok') ctx.log.info(line);
      else ctx.log.error(line);
      st[name] = { ...st[name], lastScrub: r.at, state: r.state, problems: r.problems.length };
      await rm(join(tmp, name), { recursive: true, force: true });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    // Forget backups that retention removed; keep the rest (also on an interrupted scrub).
    for (const k of Object.keys(st)) if (!published.includes(k)) delete st[k];
    await saveScrubState(c.STATE_DIR, st).catch((e) => ctx.log.warn(`cannot write ${scrubStatePath(c.STATE_DIR)}: ${(e as Error).message}`));
  }
  return {
    ok: results.every((r) => r.state === 'ok'),
    startedAt: startedAt.toISOString(),
    finishedAt: ctx.now().toISOString(),
    results,
    skipped,
  };
}

async function scrubOne(ctx: RunContext, root: string, name: string, dir: string): Promise<BackupScrub> {
  const t0 = performance.now();
  const base = `${root}/${name}`;
  const r: BackupScrub = { name, state: 'ok', files: 0, hashedOnBox: 0, downloaded: 0, problems: [], ms: 0, at: ctx.now().toISOString() };
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const sumsLocal = join(dir, CHECKSUM_FILE);
    const got = await ctx.box.getFile(`${base}/${CHECKSUM_FILE}`, sumsLocal);
    if (!got) {
      r.state = 'damaged';
      r.message = `${CHECKSUM_FILE} is missing or unreadable on the box: the backup cannot be verified`;
      r.problems.push({ path: CHECKSUM_FILE, kind: 'missing' });
      return r;
    }
    // The split layout's parts (missing for old backups, which list everything in one file).
    await ctx.box.getDir(`${base}/${MANIFEST_DIR}`, join(dir, MANIFEST_DIR));
    const expected = new Map<string, string>();
    await readManifest(
      dir,
      (p) => {
        if (!isPlainRelative(p.path)) r.problems.push({ path: p.path, kind: 'bad-path' });
        else expected.set(p.path, p.hash);
      },
      (problem) => {
        // A missing or altered part is listed in checksums.sha256 like any file: the box's
        // hashing below names it. Its lines are not trusted meanwhile.
        if (problem.kind === 'bad-line') r.problems.push({ path: `${problem.file}: ${JSON.stringify(problem.line.slice(0, 120))}`, kind: 'bad-path' });
      },
    );
    r.files = expected.size;
    if (expected.size === 0 && r.problems.length === 0) {
      r.state = 'damaged';
      r.message = `${CHECKSUM_FILE} lists no files`;
      r.problems.push({ path: CHECKSUM_FILE, kind: 'missing' });
      return r;
    }
    const paths = [...expected.keys()].sort();
    const safe = paths.filter((p) => isShellSafe(`${base}/${p}`));
    const unsafe = paths.filter((p) => !isShellSafe(`${base}/${p}`));

    const actual = new Map<string, string>();
    const boxed = await ctx.box.sha256(
      safe.map((p) => `${base}/${p}`),
      (done) => ctx.log.debug(`scrub ${name}: ${done}/${safe.length} hashed on the box`),
    );
    for (const p of safe) {
      const h = boxed.get(`${base}/${p}`);
      if (h) actual.set(p, h);
    }
    r.hashedOnBox = safe.length;
    if (unsafe.length) {
      for (const [p, h] of await downloadAndHash(ctx, base, unsafe, join(dir, 'files'))) actual.set(p, h);
      r.downloaded = unsafe.length;
    }
    for (const p of paths) {
      const a = actual.get(p);
      if (a === undefined) r.problems.push({ path: p, kind: 'missing' });
      else if (a !== expected.get(p)) r.problems.push({ path: p, kind: 'mismatch', expected: expected.get(p)!, actual: a });
    }
    if (r.problems.length) r.state = 'damaged';
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    r.state = 'error';
    r.message = (e as Error).message;
  } finally {
    r.ms = performance.now() - t0;
  }
  return r;
}

/** For names the box shell refuses: fetch exactly those files with rsync and hash them here. */
async function downloadAndHash(ctx: RunContext, base: string, paths: string[], into: string): Promise<Map<string, string>> {
  await mkdir(into, { recursive: true, mode: 0o700 });
  const list = join(into, '..', 'unsafe-names.list');
  await writeFile(list, paths.map((p) => `${p}\0`).join(''), { mode: 0o600 });
  await ctx.exec('rsync', ['-t', '--files-from', list, '--from0', '--timeout', String(ctx.config.RSYNC_TIMEOUT), '-e', rsyncRemoteShell(ctx.box.target), remoteSpec(ctx.box.target, `${base}/`), `${into}/`], {
    what: `downloading ${paths.length} file(s) whose names the Storage Box shell cannot take, to hash them`,
    okCodes: [0, 23, 24],
  });
  const out = new Map<string, string>();
  for (const p of paths) {
    const abs = join(into, p);
    const st = await lstat(abs).catch(() => undefined);
    if (!st?.isFile()) continue;
    out.set(p, await hashFile(abs));
  }
  return out;
}

function hashFile(p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(p)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

function scrubLine(r: BackupScrub): string {
  const how = `${r.files} files, ${r.hashedOnBox} hashed on the box${r.downloaded ? `, ${r.downloaded} downloaded and hashed here (names the box shell cannot take)` : ''}, ${(r.ms / 1000).toFixed(1)} s`;
  if (r.state === 'ok') return `OK       ${r.name} (${how})`;
  if (r.state === 'error') return `ERROR    ${r.name}: the scrub could not finish: ${r.message}`;
  const n = r.problems.length;
  return `DAMAGED  ${r.name}: ${r.message ?? `${n === 1 ? '1 file differs' : `${n} files differ`} from checksums.sha256`} (${how})`;
}

/** The report for a terminal, the log or an e-mail: one line per backup, then each bad file. */
export function scrubText(report: ScrubReport, maxFiles = 20): string[] {
  const lines: string[] = [];
  if (report.results.length === 0 && report.skipped.length === 0) return ['no published backups on the Storage Box to verify'];
  for (const r of report.results) {
    lines.push(scrubLine(r));
    for (const p of r.problems.slice(0, maxFiles)) {
      if (p.kind === 'mismatch') lines.push(`  differs  ${p.path} (expected ${p.expected.slice(0, 12)}…, box has ${p.actual.slice(0, 12)}…)`);
      else if (p.kind === 'missing') lines.push(`  missing  ${p.path}`);
      else lines.push(`  bad path ${p.path} (not inside the backup folder; not checked)`);
    }
    if (r.problems.length > maxFiles) lines.push(`  … and ${r.problems.length - maxFiles} more`);
  }
  if (report.skipped.length) lines.push(`not verified this time (time budget used up): ${report.skipped.join(', ')}`);
  const damaged = report.results.filter((r) => r.state === 'damaged').length;
  const errors = report.results.filter((r) => r.state === 'error').length;
  lines.push(
    report.ok
      ? `${report.results.length} backup(s) verified on the box: all OK`
      : `${report.results.length} backup(s) checked: ${damaged} damaged, ${errors} could not be checked`,
  );
  return lines;
}

/** Exit code for `verify`: a damaged backup outranks one that could not be checked. */
export function scrubExitCode(report: ScrubReport): number {
  if (report.results.some((r) => r.state === 'damaged')) return EXIT.unhealthy;
  if (report.results.some((r) => r.state === 'error')) return EXIT.failed;
  return EXIT.ok;
}
