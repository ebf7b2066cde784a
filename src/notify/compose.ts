// The report e-mail, composed from the run summary: pure, so it is tested as text. Every value
// goes through the redactor before it is escaped, and the finished subject, text and HTML go
// through it once more: no secret of mailcow.conf or of the config can reach a mailbox.
import { EXIT } from '../cli/exit-codes.js';
import { bytes, duration } from '../plan/human.js';
import { afterPublishProblem, verifiedText, verifiedWith, wasInterrupted, type RunSummary } from '../plan/report.js';

export interface ComposedMail {
  subject: string;
  text: string;
  html: string;
}

export type RunResult = 'ok' | 'partial' | 'failed' | 'interrupted';

/**
 * ok: published and verified; partial: published, then a later step failed or the scrub found
 * an older backup damaged; interrupted: stopped by SIGINT/SIGTERM (not a failure); failed: nothing new.
 */
export function resultOf(s: RunSummary): RunResult {
  if (s.ok && s.exitCode === EXIT.ok) return 'ok';
  if (wasInterrupted(s)) return 'interrupted';
  return s.exitCode === EXIT.partial && s.backupName ? 'partial' : 'failed';
}

export interface ComposeContext {
  redact: (text: string) => string;
  /** The last log lines of the run (already redacted by the logger; redacted again here). */
  logTail?: string[];
  /** How to read the full log, e.g. `less +G /var/log/mailcow-backup.log`. */
  logCommands?: string[];
  /** The timer's next run as systemd prints it; left out when unknown. */
  nextRun?: string;
  /** The run before this one failed: this success ends a failure streak. */
  recovered?: boolean;
  /** When the failure streak this success ends began (ISO). */
  failingSince?: string;
  toolVersion?: string;
}

export const SUBJECT_TAG = '[mailcow-backup]';

const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').replace(/\s{2,}/g, ' ').trim();

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function totalMs(s: RunSummary): number | undefined {
  if (!s.finishedAt) return undefined;
  const ms = Date.parse(s.finishedAt) - Date.parse(s.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

export function subjectFor(s: RunSummary, ctx: Pick<ComposeContext, 'redact' | 'recovered'>): string {
  const r = resultOf(s);
  const damaged = s.failedPhase === 'scrub' ? (s.scrub?.damaged ?? []) : [];
  const subject =
    r === 'ok'
      ? `${SUBJECT_TAG} OK ${s.host} — ${s.backupName ?? '?'}${ctx.recovered ? ' (recovered)' : ''}`
      : r === 'partial'
        ? damaged.length
          ? `${SUBJECT_TAG} DAMAGED ${s.host} — ${damaged.join(' ')} (new backup ${s.backupName} published)`
          : `${SUBJECT_TAG} PARTIAL ${s.host} — ${s.failedPhase ?? 'unknown phase'} failed (backup ${s.backupName} was published)`
        : r === 'interrupted'
          ? `${SUBJECT_TAG} INTERRUPTED ${s.host} — ${s.failedPhase ?? 'unknown phase'}`
          : `${SUBJECT_TAG} FAILED ${s.host} — ${s.failedPhase ?? 'unknown phase'}`;
  return oneLine(ctx.redact(subject));
}

/** Rows of [label, value]: the same facts in the text and the HTML part. */
function facts(s: RunSummary, ctx: ComposeContext): [string, string][] {
  const rows: [string, string][] = [];
  const r = resultOf(s);
  rows.push(['Host', s.host]);
  if (s.backupName) rows.push(['Backup', s.backupName + (s.published === false || r === 'failed' ? ' (not published)' : '')]);
  if (r !== 'ok') {
    rows.push([r === 'interrupted' ? 'Interrupted in' : r === 'partial' ? 'Phase' : 'Failed phase', s.failedPhase ?? 'unknown']);
    rows.push(['Error', oneLine(s.error ?? 'unknown error')]);
  }
  rows.push(['Started', s.startedAt]);
  const total = totalMs(s);
  if (total !== undefined) rows.push(['Duration', duration(total)]);
  if (s.files !== undefined || s.backupBytes !== undefined) rows.push(['Backup size', `${bytes(s.backupBytes ?? 0)}${s.files !== undefined ? ` in ${s.files} files` : ''}`]);
  if (s.components.length) rows.push(['Components', s.components.join(' ')]);
  if (s.bytesSent !== undefined) {
    const pct = s.backupBytes ? ` (${((100 * s.bytesSent) / s.backupBytes).toFixed(2)} % of the backup)` : '';
    rows.push(['Sent to the box', `${bytes(s.bytesSent)}${pct}`]);
  }
  if (s.addedOnBoxBytes !== undefined) rows.push(['Added on the box', bytes(s.addedOnBoxBytes)]);
  if (s.verifiedOnBox !== undefined) rows.push(['Verified on the box', verifiedText(s)]);
  if (s.box) rows.push(['Box usage', `${bytes(s.box.usedBytes)} used, ${bytes(s.box.availableBytes)} free of ${bytes(s.box.sizeBytes)}`]);
  if (s.backupsKept !== undefined) rows.push(['Backups kept', `${s.backupsKept}${s.removed?.length ? ` (removed ${s.removed.join(' ')})` : ''}`]);
  if (s.phases.length) rows.push(['Phases', s.phases.map((p) => `${p.phase} ${duration(p.ms)}`).join(', ')]);
  if (ctx.nextRun) rows.push(['Next run', ctx.nextRun]);
  if (ctx.recovered) rows.push(['Recovered', `the previous run failed${ctx.failingSince ? ` (failing since ${ctx.failingSince})` : ''}; this one succeeded`]);
  for (const w of s.warnings) rows.push(['Warning', w]);
  rows.push(['Log', s.logFile]);
  return rows.map(([k, v]) => [k, ctx.redact(v)]);
}

function headline(s: RunSummary, ctx: ComposeContext): string {
  const r = resultOf(s);
  const how = verifiedWith(s);
  if (r === 'ok') return `Backup ${s.backupName} of ${s.host} is published and verified on the Storage Box${how}${ctx.recovered ? ' (recovered after a failure)' : ''}.`;
  if (r === 'partial') return `Backup ${s.backupName} of ${s.host} is published and verified on the Storage Box${how}, but ${afterPublishProblem(s)}.`;
  if (r === 'interrupted') return `The backup run on ${s.host} was interrupted in the ${s.failedPhase ?? 'unknown'} phase (exit ${s.exitCode}); ${s.published ? `${s.backupName} was published before that` : 'nothing new was published'}. Earlier backups on the box are untouched.`;
  return `The backup of ${s.host} FAILED in the ${s.failedPhase ?? 'unknown'} phase; nothing new was published. Earlier backups on the box are untouched.`;
}

export function composeReport(s: RunSummary, ctx: ComposeContext): ComposedMail {
  const r = resultOf(s);
  const red = ctx.redact;
  const subject = subjectFor(s, ctx);
  const head = red(headline(s, ctx));
  const rows = facts(s, ctx);
  const tail = r === 'ok' ? [] : (ctx.logTail ?? []).map((l) => red(l));
  const commands = (ctx.logCommands ?? [`less +G ${s.logFile}`]).map((c) => red(c));
  const footer = red(`-- backup-to-hetzner${ctx.toolVersion ? ` ${ctx.toolVersion}` : ''} on ${s.host}`);

  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const text = [
    head,
    '',
    ...rows.map(([k, v]) => `${(k + ':').padEnd(width)}${v}`),
    ...(r === 'ok' ? [] : ['', 'Read the full log with:', ...commands.map((c) => `  ${c}`)]),
    ...(tail.length ? ['', `Last ${tail.length} log lines:`, ...tail.map((l) => `  ${l}`)] : []),
    '',
    footer,
    '',
  ].join('\n');

  const colour = r === 'ok' ? '#1a7f37' : r === 'partial' || r === 'interrupted' ? '#9a6700' : '#cf222e';
  const e = escapeHtml;
  const html = [
    '<!DOCTYPE html>',
    '<html><head><meta charset="utf-8"><title>' + e(subject) + '</title></head>',
    '<body style="font-family: sans-serif; font-size: 14px; color: #1f2328;">',
    `<p style="font-size: 16px; font-weight: bold; color: ${colour};">${e(head)}</p>`,
    '<table style="border-collapse: collapse;">',
    ...rows.map(([k, v]) => `<tr><th style="text-align: left; vertical-align: top; padding: 2px 12px 2px 0;">${e(k)}</th><td style="padding: 2px 0;">${e(v)}</td></tr>`),
    '</table>',
    ...(r === 'ok'
      ? []
      : ['<p>Read the full log with:</p>', `<pre style="background: #f6f8fa; padding: 8px;">${commands.map(e).join('\n')}</pre>`]),
    ...(tail.length ? [`<p>Last ${tail.length} log lines:</p>`, `<pre style="background: #f6f8fa; padding: 8px; font-size: 12px;">${tail.map(e).join('\n')}</pre>`] : []),
    `<p style="color: #656d76; font-size: 12px;">${e(footer)}</p>`,
    '</body></html>',
    '',
  ].join('\n');

  // Once more over the whole: a secret split across values, or inserted by a template above.
  return { subject: oneLine(red(subject)), text: red(text), html: red(html) };
}

export interface TestMailContext {
  host: string;
  now: Date;
  smtpTarget: string;
  tlsPolicy: string;
  redact: (text: string) => string;
  toolVersion?: string;
}

export function composeTest(ctx: TestMailContext): ComposedMail {
  const red = ctx.redact;
  const subject = oneLine(red(`${SUBJECT_TAG} TEST ${ctx.host} — test message`));
  const lines = [
    `This is a test message from backup-to-hetzner${ctx.toolVersion ? ` ${ctx.toolVersion}` : ''} on ${ctx.host}.`,
    `Sent at ${ctx.now.toISOString()} through ${ctx.smtpTarget} (${ctx.tlsPolicy}).`,
    'If you read this, backup reports will reach you.',
  ].map(red);
  return {
    subject,
    text: lines.join('\n') + '\n',
    html: `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body style="font-family: sans-serif;">${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}</body></html>\n`,
  };
}
