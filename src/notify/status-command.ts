// `backup-to-hetzner status`: the last run and its result (from the status file), the age of the
// newest backup on the box (asked of the box when a function for it is given, else taken from
// the status file) and what this host knows of its integrity, and a verdict: healthy or not.
import { age, duration } from '../plan/human.js';
import { verificationText, type Verification, type VerificationRecord } from '../plan/verification.js';
import { readStatus, type RunStatus } from './status-file.js';
import { parseBackupName } from '../plan/names.js';
import type { MirrorFacts } from '../plan/report.js';
import { lagSeconds } from '../plan/standby.js';
import { decryptionText, lagText } from './standby-report.js';

export interface NewestBackup {
  name: string;
  /** When the backup was taken (its name's time). */
  date: Date | string;
  /** What this host's record says of it; undefined: not looked up. */
  verification?: Verification;
  /** From its backup.json: age recipients' fingerprints, null when not encrypted, undefined when not read. */
  encryption?: { tool: 'age'; recipients: string[] } | null;
  /** From its backup.json: the database dump it holds (when, which backup's run made it). */
  dump?: { at: string; by: string };
}

export interface StatusDeps {
  config: { STATUS_FILE: string; STALE_AFTER_HOURS: number; DUMP_INTERVAL_HOURS?: number };
  now: () => Date;
  /** Asks the box for its newest published backup; undefined when there is none. */
  newestOnBox?: () => Promise<NewestBackup | undefined>;
  /** What the scrubs (`verify`, periodic) found, per backup; left out: not shown. */
  scrubState?: () => Promise<VerificationRecord>;
  /** Reads the status file; defaults to readStatus(config.STATUS_FILE). */
  readStatus?: (path: string) => Promise<RunStatus | undefined>;
}

export interface StatusReport {
  healthy: boolean;
  lines: string[];
  /** Reasons it is not healthy (empty when healthy). */
  problems: string[];
  json: {
    healthy: boolean;
    problems: string[];
    lastRun?: RunStatus;
    newestBackup?: { name: string; date: string; ageHours: number; source: 'box' | 'status-file'; verification?: Verification; encryption?: { tool: 'age'; recipients: string[] } | null };
    /** The database dump the newest backup holds: its age is the database's RPO, the backup's the mail's. */
    newestDump?: { at: string; by: string; ageHours: number; staleAfterHours: number };
    scrub?: { verified: number; damaged: string[]; lastScrub?: string };
    staleAfterHours: number;
  };
}

const local = (d: Date) => d.toLocaleString('sv-SE').slice(0, 16);

export async function statusReport(deps: StatusDeps): Promise<StatusReport> {
  const now = deps.now();
  const threshold = deps.config.STALE_AFTER_HOURS;
  const lines: string[] = [];
  const problems: string[] = [];
  const read = deps.readStatus ?? readStatus;

  let st: RunStatus | undefined;
  try {
    st = await read(deps.config.STATUS_FILE);
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (st) {
    const end = new Date(st.finishedAt);
    const scrubDamage = st.result === 'partial' && st.failedPhase === 'scrub' && st.scrub?.damaged.length;
    const verdict =
      st.result === 'ok'
        ? 'OK'
        : st.result === 'partial'
          ? scrubDamage
            ? `PUBLISHED, but the scrub found older backups DAMAGED`
            : `PARTIAL (published, then ${st.failedPhase ?? '?'} failed)`
          : st.result === 'interrupted'
            ? `INTERRUPTED in ${st.failedPhase ?? '?'} (exit ${st.exitCode}), ${st.published ? 'its backup was published before that' : 'nothing was published'}`
            : `FAILED in ${st.failedPhase ?? '?'}`;
    lines.push(`last run       ${local(end)} (${age(now.getTime() - end.getTime())} ago), took ${duration(st.durationMs)}: ${verdict}${st.backupName ? `, ${st.backupName}` : ''}`);
    if (st.result !== 'ok') {
      if (st.error) lines.push(`  ${(st.result === 'interrupted' ? 'why' : 'error').padEnd(13)}${st.error}`);
      if (st.consecutiveFailures > 1 || (st.result === 'interrupted' && st.consecutiveFailures > 0)) {
        lines.push(`  failing      ${st.consecutiveFailures} run${st.consecutiveFailures === 1 ? '' : 's'} in a row${st.failingSince ? `, since ${local(new Date(st.failingSince))}` : ''}${st.result === 'interrupted' ? ' (before this interrupted one)' : ''}`);
      }
      lines.push(`  log          less +G ${st.logFile}`);
      // An interruption is no failure; a failure streak before it still is.
      if (st.result === 'partial') problems.push(scrubDamage ? `the last run's scrub found damage: ${st.scrub!.damaged.join(' ')}` : `the last run published its backup, but ${st.failedPhase ?? 'a later step'} failed`);
      else if (st.result === 'failed') problems.push(`the last run failed in ${st.failedPhase ?? 'an unknown phase'}`);
      else if (st.consecutiveFailures > 0) problems.push(`the last completed run failed (${st.consecutiveFailures} in a row)`);
    }
  } else if (!problems.length) {
    lines.push(`last run       none recorded (${deps.config.STATUS_FILE} does not exist yet)`);
  }

  let newest: StatusReport['json']['newestBackup'];
  let dumpOf: { at: string; by: string } | undefined = st?.lastDumpAt && st.lastDumpBackup ? { at: st.lastDumpAt, by: st.lastDumpBackup } : undefined;
  if (deps.newestOnBox) {
    try {
      const b = await deps.newestOnBox();
      if (b) newest = { name: b.name, date: new Date(b.date).toISOString(), ageHours: 0, source: 'box', verification: b.verification, encryption: b.encryption };
      dumpOf = b?.dump;
    } catch (e) {
      problems.push(`the Storage Box could not be asked for its backups: ${(e as Error).message}`);
    }
  } else if (st?.lastSuccessAt && st.lastSuccessBackup) {
    newest = { name: st.lastSuccessBackup, date: st.lastSuccessAt, ageHours: 0, source: 'status-file' };
  }
  if (newest) {
    newest.ageHours = Math.round(((now.getTime() - Date.parse(newest.date)) / 3_600_000) * 10) / 10;
    const how = newest.source === 'status-file' ? 'from the status file; the box was not asked' : newest.verification ? `on the box, ${verificationText(newest.verification)}` : 'on the box';
    lines.push(`newest backup  ${newest.name}, ${age(now.getTime() - Date.parse(newest.date))} old (${how})`);
    if (newest.encryption !== undefined) lines.push(`encrypted      ${newest.encryption ? `with age for ${newest.encryption.recipients.join(', ')}` : 'no (ENCRYPT_RECIPIENTS was not set for it)'}`);
    if (newest.ageHours > threshold) {
      lines.push(`WARNING        the newest verified backup is older than ${threshold} h (STALE_AFTER_HOURS): backups are not being made`);
      problems.push(`the newest verified backup is ${newest.ageHours} h old (more than ${threshold} h)`);
    }
  }
  let newestDump: StatusReport['json']['newestDump'];
  if (newest && dumpOf) {
    // Between dumps the mail is fresher than the database; a dump counts as stale only past its interval.
    const staleAfterHours = Math.max(threshold, (deps.config.DUMP_INTERVAL_HOURS ?? 0) + 2);
    const ms = now.getTime() - Date.parse(dumpOf.at);
    newestDump = { ...dumpOf, ageHours: Math.round((ms / 3_600_000) * 10) / 10, staleAfterHours };
    lines.push(`newest dump    ${local(new Date(dumpOf.at))}, ${age(ms)} old (database; ${dumpOf.by === newest.name ? 'made by the newest backup' : `made by ${dumpOf.by}, linked into the newer backups`})`);
    if (newestDump.ageHours > staleAfterHours) problems.push(`the newest database dump is ${newestDump.ageHours} h old (more than ${staleAfterHours} h: DUMP_INTERVAL_HOURS + 2, at least STALE_AFTER_HOURS)`);
  }
  if (!newest && !problems.some((p) => p.startsWith('the Storage Box'))) {
    lines.push(`newest backup  none${deps.newestOnBox ? ' on the box' : ' recorded'}`);
    problems.push('there is no verified backup');
  }
  if (st?.mirror) mirrorLines(st.mirror, newest?.name, now, threshold, lines, problems);
  let scrub: StatusReport['json']['scrub'];
  if (deps.scrubState) {
    const sc = await deps.scrubState();
    // Backups with only the run's own verification on record were never scrubbed.
    const all = Object.entries(sc).filter(([, v]) => v.lastScrub !== undefined);
    const damaged = all.filter(([, v]) => v.state === 'damaged').map(([k]) => k).sort();
    const last = all.map(([, v]) => v.lastScrub!).sort().pop();
    scrub = { verified: all.filter(([, v]) => v.state === 'ok').length, damaged, lastScrub: last };
    lines.push(
      all.length
        ? `scrub          ${scrub.verified} backup(s) re-verified on the box, the last ${age(now.getTime() - Date.parse(last!))} ago${damaged.length ? `; DAMAGED: ${damaged.join(' ')}` : ''}`
        : `scrub          no backup re-verified yet ('backup-to-hetzner verify', or SCRUB_BUDGET_MINUTES)`,
    );
    if (damaged.length) problems.push(`damaged on the box: ${damaged.join(' ')} (see 'backup-to-hetzner verify ${damaged.join(' ')}')`);
  }
  if (st?.snapshots) {
    const sn = st.snapshots;
    lines.push(
      sn.count === 0
        ? `snapshots      none visible to this account when the last run looked: nothing protects the backups from this server's own key (see 'backup-to-hetzner check')`
        : `snapshots      ${sn.count}, the newest ${sn.newest}${sn.newestAt ? ` ${age(now.getTime() - Date.parse(sn.newestAt))} old` : ''} (as the last run saw them)`,
    );
  }
  for (const p of problems) if (!lines.some((l) => l.includes(p))) lines.push(`problem        ${p}`);
  const healthy = problems.length === 0;
  lines.push(healthy ? 'healthy' : `NOT healthy (${problems.length} problem${problems.length === 1 ? '' : 's'})`);
  return { healthy, lines, problems, json: { healthy, problems, lastRun: st, newestBackup: newest, newestDump, scrub, staleAfterHours: threshold } };
}

/** A standby host: the copy it holds, how far it lags the box (asked now when the box answered), and whether it is stale. */
function mirrorLines(m: MirrorFacts, newestOnBox: string | undefined, now: Date, threshold: number, lines: string[], problems: string[]): void {
  if (!m.name) {
    lines.push('mirror         none: this standby holds no verified copy yet');
    problems.push('the standby holds no verified copy of a backup');
    return;
  }
  const taken = parseBackupName(m.name);
  const verified = m.verifiedAt ? `verified ${local(new Date(m.verifiedAt))} (${age(now.getTime() - Date.parse(m.verifiedAt))} ago)` : 'verified (when: not recorded)';
  lines.push(`mirror         ${m.name}, ${verified}; ${decryptionText(m.decryption)}`);
  const live = newestOnBox ? { ...m, newestOnBox, lagSeconds: lagSeconds(m.name, newestOnBox) } : m;
  lines.push(`lag            ${lagText(live)}`);
  const ageHours = taken ? (now.getTime() - taken.getTime()) / 3_600_000 : 0;
  if (ageHours > threshold) problems.push(`the mirrored backup ${m.name} is ${Math.round(ageHours * 10) / 10} h old (more than ${threshold} h, STALE_AFTER_HOURS): a failover would restore stale mail`);
}
