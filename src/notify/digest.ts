// NOTIFY_ON=daily: with a run every hour, 24 success mails a day would teach the admin to ignore
// them all. Failures still go out at once (after-run.ts); every run is also written down here,
// in STATE_DIR/report-digest.json, and the first run of a new day sends the day before as one
// digest. A digest that cannot be delivered stays and goes with the next run's attempt.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bytes, duration } from '../plan/human.js';
import type { RunSummary } from '../plan/report.js';
import { escapeHtml, resultOf, SUBJECT_TAG, type ComposedMail, type RunResult } from './compose.js';
import { writeAtomic } from './status-file.js';

export interface DigestRun {
  at: string;
  result: RunResult;
  backup?: string;
  ms?: number;
  sentBytes?: number;
  addedBytes?: number;
  /** The backup whose dump this one holds (its own name when the run dumped). */
  dumpBy?: string;
  /** One line, redacted, for runs that did not succeed. */
  error?: string;
}

export const digestPath = (stateDir: string) => join(stateDir, 'report-digest.json');

const pad = (n: number) => String(n).padStart(2, '0');
/** The host's local day: a digest is "the runs of Tuesday" as the admin's clock says. */
const dayOf = (iso: string) => {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
};

export function digestRunOf(s: RunSummary, redact: (t: string) => string): DigestRun {
  const at = s.finishedAt ?? s.startedAt;
  const r: DigestRun = { at, result: resultOf(s), backup: s.backupName, ms: Math.max(0, Date.parse(at) - Date.parse(s.startedAt)) || undefined, sentBytes: s.bytesSent, addedBytes: s.addedOnBoxBytes, dumpBy: s.dump?.by };
  if (r.result !== 'ok' && s.error) r.error = redact(s.error.replace(/[\r\n]+/g, ' '));
  return JSON.parse(JSON.stringify(r)) as DigestRun;
}

/** PURE: the runs held so far and this one in; what to send now (runs of earlier days) and what to hold. */
export function planDigest(held: DigestRun[], run: DigestRun): { send: DigestRun[]; hold: DigestRun[] } {
  const today = dayOf(run.at);
  const send = held.filter((r) => dayOf(r.at) < today);
  return { send, hold: [...held.filter((r) => dayOf(r.at) >= today), run] };
}

export async function loadDigest(stateDir: string): Promise<DigestRun[]> {
  try {
    const runs = JSON.parse(await readFile(digestPath(stateDir), 'utf8')) as { runs?: unknown };
    return Array.isArray(runs.runs) ? (runs.runs as DigestRun[]).filter((r) => typeof r?.at === 'string' && typeof r.result === 'string') : [];
  } catch {
    return [];
  }
}

export const saveDigest = (stateDir: string, runs: DigestRun[]) => writeAtomic(digestPath(stateDir), JSON.stringify({ runs }, null, 2) + '\n', 0o600);

export function composeDigest(runs: DigestRun[], host: string, ctx: { redact: (t: string) => string; toolVersion?: string }): ComposedMail {
  const days = [...new Set(runs.map((r) => dayOf(r.at)))];
  const count = (res: RunResult) => runs.filter((r) => r.result === res).length;
  const bad = runs.length - count('ok');
  const what = `${runs.length} run${runs.length === 1 ? '' : 's'}, ${count('ok')} OK${bad ? `, ${bad} not OK (each reported when it happened)` : ''}`;
  const subject = `${SUBJECT_TAG} ${bad ? 'DIGEST' : 'OK'} ${host} — ${days.join(', ')}: ${what}`;
  const newest = [...runs].reverse().find((r) => r.result === 'ok' || r.result === 'partial');
  const head = `Backups of ${host} on ${days.join(', ')}: ${what}.${newest ? ` The newest published: ${newest.backup}.` : ' None was published.'}`;
  const rows = runs.map((r) => [
    new Date(r.at).toLocaleString('sv-SE').slice(0, 16),
    r.result.toUpperCase(),
    r.backup ?? '-',
    r.ms === undefined ? '-' : duration(r.ms),
    r.sentBytes === undefined ? '-' : bytes(r.sentBytes),
    r.addedBytes === undefined ? '-' : bytes(r.addedBytes),
    r.dumpBy === undefined ? '-' : r.dumpBy === r.backup ? 'own' : `linked (${r.dumpBy})`,
    r.error ?? '',
  ]);
  const header = ['finished', 'result', 'backup', 'took', 'sent', 'added on box', 'dump', 'error'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const footer = `-- backup-to-hetzner${ctx.toolVersion ? ` ${ctx.toolVersion}` : ''} on ${host} (NOTIFY_ON=daily: failures are mailed at once, successes once a day)`;
  const text = [head, '', line(header), ...rows.map(line), '', footer, ''].join('\n');
  const e = escapeHtml;
  const html = [
    '<!DOCTYPE html>',
    `<html><head><meta charset="utf-8"><title>${e(subject)}</title></head>`,
    '<body style="font-family: sans-serif; font-size: 14px; color: #1f2328;">',
    `<p style="font-size: 16px; font-weight: bold;">${e(head)}</p>`,
    '<table style="border-collapse: collapse;">',
    `<tr>${header.map((h) => `<th style="text-align: left; padding: 2px 12px 2px 0;">${e(h)}</th>`).join('')}</tr>`,
    ...rows.map((r) => `<tr>${r.map((c) => `<td style="padding: 2px 12px 2px 0;">${e(c)}</td>`).join('')}</tr>`),
    '</table>',
    `<p style="color: #656d76; font-size: 12px;">${e(footer)}</p>`,
    '</body></html>',
    '',
  ].join('\n');
  const red = ctx.redact;
  return { subject: red(subject).replace(/[\r\n]+/g, ' '), text: red(text), html: red(html) };
}
