// The words of a standby's run (restore-from-hetzner standby): its summary screen, its e-mail and
// its healthcheck ping body. The e-mail's layout, redaction and escaping are compose.ts's; only
// the headline and the facts differ from a backup's.
import { age, bytes, duration } from '../plan/human.js';
import type { MirrorFacts, RunSummary } from '../plan/report.js';
import { composeReport, escapeHtml as escape, resultOf, SUBJECT_TAG, type ComposeContext, type ComposedMail, type RunResult } from './compose.js';

export const STANDBY_SERVICE_UNIT = 'mailcow-standby.service';

/** "0 (…)" only when the mirror holds the newest backup; else how much older its backup is. */
export const lagText = (m: MirrorFacts) =>
  m.lagSeconds === undefined ? 'unknown' : m.name === m.newestOnBox ? '0 (the mirror holds the newest backup on the box)' : `${m.lagSeconds < 60 ? `${m.lagSeconds} s` : age(m.lagSeconds * 1000)} behind the newest backup on the box, ${m.newestOnBox}`;

export const decryptionText = (d: MirrorFacts['decryption']) =>
  d === 'proved' ? 'archives decrypted with AGE_IDENTITY_FILE and tested' : d === 'not proved' ? 'decryption not proved: no AGE_IDENTITY_FILE on this host' : d === 'not encrypted' ? 'not encrypted' : 'unknown';

export function standbyHeadline(s: RunSummary): string {
  const m = s.mirror ?? {};
  const r = resultOf(s);
  if (r === 'ok') return `standby: ${m.name} mirrored and verified on ${s.host}`;
  if (r === 'partial') return `standby: ${m.name} mirrored and verified on ${s.host}, but ${s.failedPhase ?? '?'} failed: ${s.error ?? ''}`;
  const held = m.name ? `the mirror still holds ${m.name}` : 'the mirror holds no complete copy';
  if (r === 'interrupted') return `standby: mirror run INTERRUPTED in ${s.failedPhase ?? '?'}; ${held}`;
  return `standby: mirror run FAILED in ${s.failedPhase ?? '?'} (exit ${s.exitCode}); ${held}`;
}

export function standbySummaryText(s: RunSummary): string[] {
  const m = s.mirror ?? {};
  const lines = [standbyHeadline(s)];
  if (m.name) lines.push(`  mirrored     ${m.name}${m.verifiedAt ? `, verified ${m.verifiedAt}` : ''}`);
  lines.push(`  lag          ${lagText(m)}`);
  if (s.files !== undefined) lines.push(`  verified     ${s.files} files against the manifest`);
  if (m.decryption) lines.push(`  decryption   ${decryptionText(m.decryption)}`);
  if (m.bytesFromBox !== undefined) lines.push(`  from box     ${bytes(m.bytesFromBox)}`);
  if (m.copies) lines.push(`  copies       ${m.copies.join(' ') || 'none'}`);
  if (s.phases.length) lines.push(`  phases       ${s.phases.map((p) => `${p.phase} ${duration(p.ms)}`).join(', ')}`);
  for (const w of s.warnings) lines.push(`  warning      ${w}`);
  lines.push(`  log          ${s.logFile}`);
  return lines;
}

export function composeStandbyReport(s: RunSummary, ctx: ComposeContext): ComposedMail {
  const mail = composeReport(s, ctx);
  const r = resultOf(s);
  const word = r === 'ok' ? 'OK' : r === 'partial' ? 'PARTIAL' : r === 'interrupted' ? 'INTERRUPTED' : 'FAILED';
  const subject = ctx.redact(`${SUBJECT_TAG} STANDBY ${word} ${s.host} — ${r === 'ok' ? (s.mirror?.name ?? '?') : (s.failedPhase ?? '?')}`).replace(/[\r\n]+/g, ' ');
  // The backup report's headline and subject speak of publishing; the standby publishes nothing.
  const body = standbySummaryText(s).map(ctx.redact);
  // A backup's "Backup: … (not published)" and its phases (already above) say nothing here.
  const rest = mail.text.split('\n').slice(2).filter((l) => !/^(Backup|Phases):/.test(l));
  const text = [body[0]!, '', ...body.slice(1).map((l) => l.trim()), '', ...rest].join('\n');
  const html = mail.html
    .replace(/<tr><th[^>]*>(Backup|Phases)<\/th>.*<\/tr>\n/g, '').replace(/<title>[^<]*<\/title>/, `<title>${escape(subject)}</title>`).replace(/(<p style="font-size: 16px; font-weight: bold;[^>]*>)[^<]*(<\/p>)/, `$1${escape(body[0]!)}$2`);
  return { subject, text: ctx.redact(text), html: ctx.redact(html) };
}

export function standbyPingBody(s: RunSummary, result: RunResult, logTail: string[]): string {
  return result === 'ok' ? standbyHeadline(s) : [standbyHeadline(s), s.error ?? '', '', ...logTail].join('\n');
}
