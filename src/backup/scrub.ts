// `backup-to-hetzner verify` (the scrub): the box re-hashes published backups against their own
// checksums.sha256, nothing of the data is downloaded. Only files whose names the box shell
// cannot take (a maildir folder `.Entw&APw-rfe` holds `&`) are fetched with rsync and hashed
// here, since there is no local copy to compare against; the report says how many.
// A box that refuses sha256sum cannot hash anything itself, and older backups have no local copy
// for rsync --checksum to compare with: `verify` then downloads every file and hashes it here (the
// backup's size in bandwidth, said in the report), and the daily run's scrub, which must not
// cost that unasked, skips them and says so (never "verified").
// Results are kept in STATE_DIR/scrub.json (lastScrub per backup) so a periodic scrub with a
// time budget can take the oldest-unverified backups first. The same record holds when the run
// that published a backup verified it (verifiedAt): what `list`, `status` and the restore show.
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT } from '../cli/exit-codes.js';
import { UserError } from '../errors.js';
import { writeAtomic } from '../notify/status-file.js';
import { isShellSafe, type VerifyMethod } from '../plan/box-command.js';
import { CHECKSUM_FILE, MANIFEST_DIR, isManifestPart, readManifest } from '../plan/manifest.js';
import { isBackupName, publishedBackups } from '../plan/names.js';
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
  /** Each backup's result as it is done; by default it is logged (the daily run). */
  onResult?: (r: BackupScrub) => void;
  /**
   * A box without sha256sum: download every file and hash it here (default). false: skip them,
   * reported as not scrubbed (the daily run, which must not spend a backup's size unasked).
   */
  download?: boolean;
  /** Left out of the selection: the backup the daily run has just verified itself. */
  exclude?: string[];
}

/** Why a scrub without download left every backup unchecked. */
export const NO_SHA256SUM_SKIP = "not scrubbed: the box has no sha256sum; 'backup-to-hetzner verify' downloads the files and hashes them here (each backup's size in bandwidth)";

export type FileProblem =
  | { path: string; kind: 'mismatch'; expected: string; actual: string }
  | { path: string; kind: 'missing' }
  /** A manifest line whose path escapes the backup folder or is not a plain relative path. */
  | { path: string; kind: 'bad-path' };

export interface BackupScrub {
  name: string;
  /** ok: every file matches; damaged: files differ or are missing; error: the scrub could not finish. */
  state: 'ok' | 'damaged' | 'error';
  /** Files listed in checksums.sha256: the backup's files (the run's "files" count) plus manifestParts. */
  files: number;
  /** Of those, the manifest's own parts (manifest/*.sha256.gz). */
  manifestParts: number;
  /** Hashed by the box itself. */
  hashedOnBox: number;
  /** Downloaded and hashed locally: names the box shell refuses, or every file if the box has no sha256sum. */
  downloaded: number;
  method: VerifyMethod;
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
  /** Set when every selected backup was skipped for another reason than time (NO_SHA256SUM_SKIP). */
  notScrubbed?: string;
  /** Deleted from the box (a run's retention) while this scrub read them: neither verified nor damaged. */
  pruned: string[];
  method: VerifyMethod;
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
  const pruned: string[] = [];
  const method = await ctx.box.verifyMethod();
  const report = (notScrubbed?: string): ScrubReport => ({
    ok: results.every((r) => r.state === 'ok'),
    startedAt: startedAt.toISOString(),
    finishedAt: ctx.now().toISOString(),
    results,
    skipped,
    pruned,
    notScrubbed,
    method,
  });
  if (method === 'rsync-checksum' && opts.download === false) {
    skipped.push(...selected);
    if (selected.length) ctx.log.warn(`${selected.length} backup(s) ${NO_SHA256SUM_SKIP}`);
    return report(selected.length ? NO_SHA256SUM_SKIP : undefined);
  }
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
      const r = await scrubOne(ctx, root, name, join(tmp, name), method);
      await rm(join(tmp, name), { recursive: true, force: true });
      // `verify` takes no lock (a long --all must not make the daily run skip as busy), so a run's
      // retention may delete a backup while it is read: that backup is gone, not damaged.
      if (r.state !== 'ok' && !publishedBackups(await ctx.box.list(root)).includes(name)) {
        pruned.push(name);
        ctx.log.info(`${name} was removed from the box (retention) while it was being verified: not counted as damaged`);
        continue;
      }
      results.push(r);
      if (opts.onResult) opts.onResult(r);
      else if (r.state === 'ok') ctx.log.info(scrubLine(r));
      else ctx.log.error(scrubLine(r));
      st[name] = { ...st[name], lastScrub: r.at, state: r.state, problems: r.problems.length };
    }
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    // Forget backups that retention removed; keep the rest (also on an interrupted scrub).
    for (const k of Object.keys(st)) if (!published.includes(k) || pruned.includes(k)) delete st[k];
    await saveScrubState(c.STATE_DIR, st).catch((e) => ctx.log.warn(`cannot write ${scrubStatePath(c.STATE_DIR)}: ${(e as Error).message}`));
  }
  return report();
}

async function scrubOne(ctx: RunContext, root: string, name: string, dir: string, method: VerifyMethod): Promise<BackupScrub> {
  const t0 = performance.now();
  const base = `${root}/${name}`;
  const r: BackupScrub = { name, state: 'ok', files: 0, manifestParts: 0, hashedOnBox: 0, downloaded: 0, method, problems: [], ms: 0, at: ctx.now().toISOString() };
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
    r.manifestParts = [...expected.keys()].filter(isManifestPart).length;
    if (expected.size === 0 && r.problems.length === 0) {
      r.state = 'damaged';
      r.message = `${CHECKSUM_FILE} lists no files`;
      r.problems.push({ path: CHECKSUM_FILE, kind: 'missing' });
      return r;
    }
    const paths = [...expected.keys()].sort();
    const byBox = (p: string) => method === 'sha256sum' && isShellSafe(`${base}/${p}`);
    const safe = paths.filter(byBox);
    const unsafe = paths.filter((p) => !byBox(p));

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
      for (const [p, h] of await ctx.box.downloadHashes(base, unsafe, join(dir, 'files'), ctx.config.RSYNC_TIMEOUT)) actual.set(p, h);
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

function scrubLine(r: BackupScrub): string {
  // The run's summary counts the backup's files; checksums.sha256 also lists the manifest's parts.
  const files = `${r.files - r.manifestParts} backup files + ${r.manifestParts} manifest part(s)`;
  const how =
    r.method === 'sha256sum'
      ? `${files}, ${r.hashedOnBox} hashed on the box${r.downloaded ? `, ${r.downloaded} downloaded and hashed here (names the box shell cannot take)` : ''}, ${(r.ms / 1000).toFixed(1)} s`
      : `${files}, ${r.downloaded} downloaded and hashed here (the box has no sha256sum), ${(r.ms / 1000).toFixed(1)} s`;
  if (r.state === 'ok') return `OK       ${r.name} (${how})`;
  if (r.state === 'error') return `ERROR    ${r.name}: the scrub could not finish: ${r.message}`;
  const n = r.problems.length;
  return `DAMAGED  ${r.name}: ${r.message ?? `${n === 1 ? '1 file differs' : `${n} files differ`} from checksums.sha256`} (${how})`;
}

/** One backup's line and the files that differ (at most maxFiles of them). */
export function scrubResultText(r: BackupScrub, maxFiles = 20): string[] {
  const lines = [scrubLine(r)];
  for (const p of r.problems.slice(0, maxFiles)) {
    if (p.kind === 'mismatch') lines.push(`  differs  ${p.path} (expected ${p.expected.slice(0, 12)}…, box has ${p.actual.slice(0, 12)}…)`);
    else if (p.kind === 'missing') lines.push(`  missing  ${p.path}`);
    else lines.push(`  bad path ${p.path} (not inside the backup folder; not checked)`);
  }
  if (r.problems.length > maxFiles) lines.push(`  … and ${r.problems.length - maxFiles} more`);
  return lines;
}

/** The report for a terminal, the log or an e-mail: one line per backup, then each bad file.
 *  The whole report; `withResults: false` gives only what follows the per-backup lines (printed as they came). */
export function scrubText(report: ScrubReport, maxFiles = 20, withResults = true): string[] {
  const lines: string[] = [];
  if (report.results.length === 0 && report.skipped.length === 0 && report.pruned.length === 0) return ['no published backups on the Storage Box to verify'];
  if (report.notScrubbed) return [`${report.skipped.length} backup(s) ${report.notScrubbed}: ${report.skipped.join(', ')}`];
  if (withResults) for (const r of report.results) lines.push(...scrubResultText(r, maxFiles));
  if (report.skipped.length) lines.push(`not verified this time (time budget used up): ${report.skipped.join(', ')}`);
  if (report.pruned.length) lines.push(`removed from the box by retention while being verified: ${report.pruned.join(', ')}`);
  const damaged = report.results.filter((r) => r.state === 'damaged').length;
  const errors = report.results.filter((r) => r.state === 'error').length;
  lines.push(
    report.ok
      ? `${report.results.length} backup(s) verified ${report.method === 'sha256sum' ? 'on the box' : 'by downloading them (the box has no sha256sum)'}: all OK`
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
