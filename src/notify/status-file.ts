// The last run's result on disk: a JSON status file (read by `status` and by the next run, for
// the "recovered" message) and, optionally, a Prometheus textfile-collector file. Both are
// written atomically (temporary file in the same folder, fsync, rename), so a reader never
// sees half a file; node_exporter ignores the temporary name (it does not end in .prom).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { MirrorFacts, RunSummary } from '../plan/report.js';
import { parseBackupName } from '../plan/names.js';
import { resultOf, type RunResult } from './compose.js';

export const STATUS_VERSION = 1;

export interface RunStatus {
  version: number;
  host: string;
  result: RunResult;
  exitCode: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  backupName?: string;
  /** This run published its backup (also when a later step failed or it was interrupted after). */
  published?: boolean;
  failedPhase?: string;
  /** One line, redacted. */
  error?: string;
  files?: number;
  backupBytes?: number;
  bytesSent?: number;
  addedOnBoxBytes?: number;
  backupsKept?: number;
  /** The periodic scrub of this run, when SCRUB_BUDGET_MINUTES is on. */
  scrub?: { verified: string[]; damaged: string[]; skipped: number };
  box?: { usedBytes: number; availableBytes: number; sizeBytes: number };
  /** The box's ZFS snapshots as the run saw them. */
  snapshots?: RunSummary['snapshots'];
  phases: { phase: string; ms: number }[];
  warnings: string[];
  logFile: string;
  /** Carried over from run to run. */
  lastSuccessAt?: string;
  lastSuccessBackup?: string;
  /** The result of the run before this one (undefined: none recorded). */
  previousResult?: RunResult;
  /** Failed runs in a row, this one included (0 after a success; an interrupted run leaves it as it was). */
  consecutiveFailures: number;
  /** When the current failure streak began; set while failing, cleared by a success. */
  failingSince?: string;
  toolVersion?: string;
  /** The database dump the newest published backup holds (database RPO; DUMP_INTERVAL_HOURS): when it began, which backup's run made it. */
  lastDumpAt?: string;
  lastDumpBackup?: string;
  /** A standby's run: the mirror it holds (restore-from-hetzner standby). */
  mirror?: MirrorFacts;
  /** The last restore drill (`restore-from-hetzner drill`); carried over by the backup runs. */
  lastDrill?: DrillStatus;
}

export interface DrillStatus {
  at: string;
  backup?: string;
  /** ok: restorable; failed: NOT restorable (exit 6); error: the drill could not run (exit 1). */
  result: 'ok' | 'failed' | 'error';
  exitCode: number;
  summary: string;
  domains?: number;
  mailboxes?: number;
  messages?: number;
  bytes?: number;
  fetchMs?: number;
  openMs?: number;
  /** The last drill that proved a backup restorable. */
  lastSuccessAt?: string;
}

/** PURE: the status this run leaves, from its summary and the one the previous run left. */
export function nextStatus(prev: RunStatus | undefined, s: RunSummary, opts: { now: Date; redact: (t: string) => string; toolVersion?: string }): RunStatus {
  const result = resultOf(s);
  const finishedAt = s.finishedAt ?? opts.now.toISOString();
  const durationMs = Math.max(0, Date.parse(finishedAt) - Date.parse(s.startedAt)) || 0;
  const published = s.published ?? (result === 'ok' || result === 'partial');
  // An interrupted run (Ctrl-C, systemd stopping it) neither fails nor succeeds: the streak stands.
  const interrupted = result === 'interrupted';
  const failing = result === 'failed' || result === 'partial';
  const st: RunStatus = {
    version: STATUS_VERSION,
    host: s.host,
    result,
    exitCode: s.exitCode,
    startedAt: s.startedAt,
    finishedAt,
    durationMs,
    backupName: s.backupName,
    published,
    failedPhase: s.failedPhase,
    error: s.error === undefined ? undefined : opts.redact(s.error.replace(/[\r\n]+/g, ' ')),
    files: s.files,
    backupBytes: s.backupBytes,
    bytesSent: s.bytesSent,
    addedOnBoxBytes: s.addedOnBoxBytes,
    backupsKept: s.backupsKept,
    scrub: s.scrub,
    box: s.box,
    snapshots: s.snapshots,
    phases: s.phases.map((p) => ({ phase: p.phase, ms: Math.round(p.ms) })),
    warnings: s.warnings.map((w) => opts.redact(w)),
    logFile: s.logFile,
    // A partial run published a verified backup: it is the newest good one.
    lastSuccessAt: published ? finishedAt : prev?.lastSuccessAt,
    lastSuccessBackup: published ? s.backupName : prev?.lastSuccessBackup,
    previousResult: prev?.result,
    consecutiveFailures: interrupted ? (prev?.consecutiveFailures ?? 0) : failing ? (prev?.consecutiveFailures ?? 0) + 1 : 0,
    failingSince: interrupted ? prev?.failingSince : failing ? (prev && prev.consecutiveFailures > 0 && prev.failingSince ? prev.failingSince : finishedAt) : undefined,
    toolVersion: opts.toolVersion,
    mirror: s.mirror,
    ...(prev?.lastDrill ? { lastDrill: prev.lastDrill } : {}),
    lastDumpAt: published && s.dump ? s.dump.at : prev?.lastDumpAt,
    lastDumpBackup: published && s.dump ? s.dump.by : prev?.lastDumpBackup,
  };
  return JSON.parse(JSON.stringify(st)) as RunStatus; // drops the undefined keys
}

/** Writes a file so that readers see the old or the new content, never a part. */
export async function writeAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(content, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

export async function writeStatus(path: string, status: RunStatus): Promise<void> {
  await writeAtomic(path, JSON.stringify(status, null, 2) + '\n');
}

/** undefined when there is no status file yet; throws when it exists but cannot be read. */
export async function readStatus(path: string): Promise<RunStatus | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the status file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`the status file ${path} is not valid JSON`);
  }
  const p = parsed as Partial<RunStatus>;
  if (!p || typeof p !== 'object' || !['ok', 'partial', 'failed', 'interrupted'].includes(String(p.result)) || typeof p.finishedAt !== 'string') {
    throw new Error(`the status file ${path} does not hold a run status`);
  }
  return { phases: [], warnings: [], consecutiveFailures: 0, ...p } as RunStatus;
}

const PREFIX = 'mailcow_backup';

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** PURE: the Prometheus text exposition of the last run (node_exporter textfile collector). */
export function renderPrometheus(st: RunStatus): string {
  const out: string[] = [];
  const metric = (name: string, help: string, value: number | undefined, labels?: Record<string, string>) => {
    if (value === undefined || !Number.isFinite(value)) return;
    const full = `${PREFIX}_${name}`;
    if (!out.includes(`# TYPE ${full} gauge`)) out.push(`# HELP ${full} ${help}`, `# TYPE ${full} gauge`);
    const l = labels ? `{${Object.entries(labels).map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')}}` : '';
    out.push(`${full}${l} ${value}`);
  };
  const secs = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
  metric('last_run_timestamp_seconds', 'End of the last run, Unix time.', secs(st.finishedAt));
  metric('last_run_success', '1 when the last run published and verified a backup (also when a later step failed), else 0.', (st.published ?? st.result !== 'failed') ? 1 : 0);
  for (const r of ['ok', 'partial', 'failed', 'interrupted'] as const) metric('last_run_result', 'Result of the last run: ok, partial (published, then a later step failed or the scrub found damage), failed or interrupted (SIGINT/SIGTERM).', st.result === r ? 1 : 0, { result: r });
  metric('last_run_exit_code', 'Exit code of the last run.', st.exitCode);
  metric('last_run_duration_seconds', 'Duration of the last run.', st.durationMs / 1000);
  for (const p of st.phases) metric('last_run_phase_duration_seconds', 'Duration of each phase of the last run.', p.ms / 1000, { phase: p.phase });
  metric('last_success_timestamp_seconds', 'End of the last run that published a verified backup, Unix time.', secs(st.lastSuccessAt));
  metric('last_dump_timestamp_seconds', 'Start of the database dump the newest published backup holds, Unix time (the database RPO; the mail RPO is last_success_timestamp_seconds).', secs(st.lastDumpAt));
  metric('consecutive_failures', 'Failed runs in a row.', st.consecutiveFailures);
  metric('last_backup_size_bytes', 'Size of the backup the last run made.', st.backupBytes);
  metric('last_backup_files', 'Files in the backup the last run made.', st.files);
  metric('last_run_sent_bytes', 'Bytes the last run sent to the Storage Box.', st.bytesSent);
  metric('last_run_added_on_box_bytes', 'Space the last backup added on the box (hard links counted once).', st.addedOnBoxBytes);
  if (st.scrub) metric('scrub_damaged_backups', 'Backups the last run found damaged on the box (periodic scrub).', st.scrub.damaged.length);
  metric('backups_kept', 'Published backups on the box after retention.', st.backupsKept);
  metric('box_used_bytes', 'Used space on the Storage Box.', st.box?.usedBytes);
  metric('box_available_bytes', 'Free space on the Storage Box.', st.box?.availableBytes);
  metric('box_size_bytes', 'Size of the Storage Box.', st.box?.sizeBytes);
  if (st.mirror) {
    metric('standby_lag_seconds', 'Standby: how much older the mirrored backup is than the newest on the box (0: up to date).', st.mirror.lagSeconds);
    metric('standby_mirrored_backup_timestamp_seconds', 'Standby: when the backup it holds as a verified copy was taken, Unix time.', st.mirror.name ? (parseBackupName(st.mirror.name)?.getTime() ?? NaN) / 1000 : undefined);
    metric('standby_verified_timestamp_seconds', 'Standby: when this host verified that copy against its manifest, Unix time.', secs(st.mirror.verifiedAt));
    metric('standby_decryption_proved', 'Standby: 1 when the encrypted archives were decrypted with AGE_IDENTITY_FILE, 0 when not proved.', st.mirror.decryption === undefined || st.mirror.decryption === 'not encrypted' ? undefined : st.mirror.decryption === 'proved' ? 1 : 0);
  }
  metric('snapshots', "ZFS snapshots of the Storage Box visible to this tool's account (0: none, or not shown to it).", st.snapshots?.count);
  metric('snapshot_newest_timestamp_seconds', 'When the newest snapshot of the box was taken (from its name), Unix time.', secs(st.snapshots?.newestAt));
  if (st.snapshots?.newestAt) metric('snapshot_newest_age_seconds', 'Age of the newest snapshot at the end of the last run.', (Date.parse(st.finishedAt) - Date.parse(st.snapshots.newestAt)) / 1000);
  return out.join('\n') + '\n' + (st.lastDrill ? renderDrillPrometheus(st.lastDrill) : '');
}

/** PURE: the last restore drill as metrics (also alone, before any backup run wrote a status). */
export function renderDrillPrometheus(d: DrillStatus): string {
  const secs = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
  const lines: string[] = [];
  const metric = (name: string, help: string, value: number | undefined) => {
    if (value === undefined || !Number.isFinite(value)) return;
    lines.push(`# HELP ${PREFIX}_${name} ${help}`, `# TYPE ${PREFIX}_${name} gauge`, `${PREFIX}_${name} ${value}`);
  };
  metric('last_drill_timestamp_seconds', 'End of the last restore drill, Unix time.', secs(d.at));
  metric('last_drill_success', '1 when the last restore drill proved its backup restorable, else 0.', d.result === 'ok' ? 1 : 0);
  metric('last_drill_success_timestamp_seconds', 'End of the last restore drill that proved a backup restorable, Unix time.', secs(d.lastSuccessAt));
  metric('last_drill_mailboxes', 'Mailboxes in the database the last drill opened.', d.mailboxes);
  metric('last_drill_messages', 'Messages in the mail the last drill fetched.', d.messages);
  metric('last_drill_fetch_seconds', 'Time the last drill took to fetch its backup (restore time estimate).', d.fetchMs === undefined ? undefined : d.fetchMs / 1000);
  metric('last_drill_open_seconds', 'Time the last drill took to prepare and open the database.', d.openMs === undefined ? undefined : d.openMs / 1000);
  return lines.length ? lines.join('\n') + '\n' : '';
}

export async function writePrometheus(path: string, st: RunStatus): Promise<void> {
  await writeAtomic(path, renderPrometheus(st));
}
