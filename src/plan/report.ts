// The run summary: collected while the run goes, turned into one screen of text here.
import { EXIT } from '../cli/exit-codes.js';
import { verifyMethodText, type VerifyMethod } from './box-command.js';
import { bytes, count, duration } from './human.js';

export interface RunSummary {
  ok: boolean;
  host: string;
  backupName?: string;
  /** The backup was renamed to its final name on the box (verified before that). */
  published?: boolean;
  startedAt: string;
  finishedAt?: string;
  phases: { phase: string; ms: number }[];
  failedPhase?: string;
  error?: string;
  exitCode: number;
  components: string[];
  files?: number;
  backupBytes?: number;
  bytesSent?: number;
  addedOnBoxBytes?: number;
  verifiedOnBox?: number;
  /** How the box proved it holds what was sent. */
  verifyMethod?: VerifyMethod;
  /** Of verifiedOnBox, files the box's rsync compared with our copy instead of its sha256sum (a verify's bulk, names its shell cannot take). */
  verifiedByRsync?: number;
  changedDuringRun?: number;
  vanishedDuringRun?: number;
  hardLinks?: { sampled: number; linked: number };
  hashed?: number;
  hashReused?: number;
  /** Files encrypted with age before upload, and the recipients' fingerprints. */
  encrypted?: { files: number; recipients: string[] };
  box?: { usedBytes: number; availableBytes: number; sizeBytes: number };
  backupsKept?: number;
  removed?: string[];
  /** The periodic scrub of older backups (SCRUB_BUDGET_MINUTES). */
  scrub?: { verified: string[]; damaged: string[]; skipped: number; notScrubbed?: string };
  warnings: string[];
  logFile: string;
  /** The database dump this backup holds: the backup whose run made it, when; `from` when linked from the newest backup. */
  dump?: { by: string; at: string; from?: string };
  /** The box's ZFS snapshots as the run found them (status, Prometheus). */
  snapshots?: { count: number; newest?: string; newestAt?: string; newestBackupProtected?: boolean };
  /** The snapshot verdict, in the report once a week (`check`'s words). */
  snapshotNote?: string;
  /** A standby's run (restore-from-hetzner standby): what it mirrored. */
  mirror?: MirrorFacts;
}

export interface MirrorFacts {
  /** The backup now held as a complete verified copy (the newest one held, on failure). */
  name?: string;
  /** When this host verified that copy against its manifest. */
  verifiedAt?: string;
  /** The newest published backup on the box when the run listed it. */
  newestOnBox?: string;
  /** Seconds the mirrored backup is older than the newest on the box; 0: up to date. */
  lagSeconds?: number;
  /** Whether the encrypted archives were proved to decrypt on this host. */
  decryption?: 'proved' | 'not proved' | 'not encrypted';
  bytesFromBox?: number;
  /** Complete copies kept in STANDBY_DIR, newest first. */
  copies?: string[];
}

/** Stopped by SIGINT/SIGTERM: an interruption, not a failure of the backup. */
export const wasInterrupted = (s: Pick<RunSummary, 'exitCode'>) => s.exitCode === EXIT.interrupted || s.exitCode === EXIT.terminated;

/** A run that published its backup and then hit a problem (exit 3): what the problem is. */
export function afterPublishProblem(s: RunSummary): string {
  const damaged = s.failedPhase === 'scrub' ? (s.scrub?.damaged ?? []) : [];
  if (damaged.length) return `the scrub found ${damaged.length === 1 ? 'an older backup' : `${damaged.length} older backups`} DAMAGED: ${damaged.join(' ')}`;
  return `the ${s.failedPhase ?? '?'} phase failed afterwards: ${s.error ?? 'unknown error'}`;
}

/** The summary's first line: the one an admin reads. */
export function summaryHeadline(s: RunSummary): string {
  const how = verifiedWith(s);
  if (s.ok) return `backup ${s.backupName} published and verified on the Storage Box${how}`;
  if (wasInterrupted(s)) return `backup INTERRUPTED in phase ${s.failedPhase ?? '?'}: ${s.published ? `${s.backupName} was published before that` : 'nothing was published'}`;
  if (s.exitCode === EXIT.partial && s.backupName) return `backup ${s.backupName} published and verified on the Storage Box${how}, but ${afterPublishProblem(s)}`;
  // The reason was just printed as the error line (stderr, LOG_FILE); the summary does not repeat it.
  return `backup FAILED in phase ${s.failedPhase ?? '?'} (exit ${s.exitCode}); the reason is the error line before this summary (stderr, and the log)`;
}

export function summaryText(s: RunSummary): string[] {
  const lines: string[] = [summaryHeadline(s)];
  if (s.files !== undefined) lines.push(`  files        ${s.files} (${bytes(s.backupBytes ?? 0)}), components: ${s.components.join(' ')}`);
  if (s.bytesSent !== undefined) {
    const pct = s.backupBytes ? ` = ${((100 * s.bytesSent) / s.backupBytes).toFixed(2)} % of the backup` : '';
    lines.push(`  sent         ${bytes(s.bytesSent)}${pct}`);
  }
  if (s.addedOnBoxBytes !== undefined) lines.push(`  added on box ${bytes(s.addedOnBoxBytes)}`);
  if (s.verifiedOnBox !== undefined) {
    lines.push(`  verified     ${verifiedText(s)}${s.changedDuringRun ? `, ${s.changedDuringRun} changed while read (sent again)` : ''}${s.vanishedDuringRun ? `, ${s.vanishedDuringRun} vanished while read` : ''}`);
  }
  if (s.dump) lines.push(`  dump         ${s.dump.from ? `not due: linked from ${s.dump.from}, ` : ''}taken ${s.dump.at} by ${s.dump.by}`);
  if (s.encrypted) lines.push(`  encrypted    ${s.encrypted.files} files (mailcow.conf, archives) with age for ${s.encrypted.recipients.join(', ')}; vmail as a tree`);
  if (s.hashed !== undefined) lines.push(`  manifest     ${s.hashed} files hashed, ${s.hashReused ?? 0} unchanged (hash reused)`);
  if (s.hardLinks) {
    lines.push(
      s.hardLinks.linked > 0
        ? `  hard links   working (${s.hardLinks.linked}/${s.hardLinks.sampled} unchanged files sampled are links)`
        : `  hard links   NOT WORKING: unchanged files were stored as copies; each backup costs its full size on the box`,
    );
  }
  if (s.box) lines.push(`  box usage    ${bytes(s.box.usedBytes)} used, ${bytes(s.box.availableBytes)} free of ${bytes(s.box.sizeBytes)}`);
  if (s.backupsKept !== undefined) lines.push(`  retention    ${count(s.backupsKept, 'backup')} kept${s.removed?.length ? `, removed ${s.removed.join(' ')}` : ''}`);
  if (s.scrub?.notScrubbed) lines.push(`  scrub        ${s.scrub.skipped} older backup(s) ${s.scrub.notScrubbed}`);
  else if (s.scrub) {
    const sc = s.scrub;
    lines.push(`  scrub        ${sc.verified.length} older backup(s) re-verified on the box${sc.damaged.length ? `, DAMAGED: ${sc.damaged.join(' ')}` : ''}${sc.skipped ? `, ${sc.skipped} left for the next runs` : ''}`);
  }
  if (s.snapshotNote) lines.push(`  snapshots    ${s.snapshotNote}`);
  if (s.phases.length) lines.push(`  phases       ${s.phases.map((p) => `${p.phase} ${duration(p.ms)}`).join(', ')}`);
  for (const w of s.warnings) lines.push(`  warning      ${w}`);
  lines.push(`  log          ${s.logFile}`);
  return lines;
}

/** Short name of the method, for a headline. */
export function verifyMethodName(m: VerifyMethod): string {
  return m === 'sha256sum' ? 'sha256sum' : 'rsync --checksum';
}

/** " with <method(s)>" for a headline, or nothing when no method is on record. */
export function verifiedWith(s: RunSummary): string {
  if (!s.verifyMethod) return '';
  return s.verifyMethod === 'sha256sum' && s.verifiedByRsync ? ' with sha256sum and rsync --checksum' : ` with ${verifyMethodName(s.verifyMethod)}`;
}

/** "N transferred files …" and how: the report must say which method vouched for which files. */
export function verifiedText(s: RunSummary): string {
  const n = s.verifiedOnBox ?? 0;
  const r = s.verifiedByRsync ?? 0;
  if (s.verifyMethod === 'sha256sum' && r > 0) {
    return `${n} transferred files: ${n - r} by the box's sha256sum, ${r} by rsync --checksum against this host's copy (the box's rsync read every byte)`;
  }
  return `${n} transferred files, ${s.verifyMethod ? verifyMethodText(s.verifyMethod) : 'hashed by the box'}`;
}
