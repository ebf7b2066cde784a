// After a restore drill: `lastDrill` in the status file (and its metrics in the Prometheus file),
// the e-mail `[mailcow-backup] DRILL OK|FAILED host — backup`, and the healthcheck. The ping is
// `/fail` when the backup is not restorable or the drill could not run, and a neutral `/log` entry
// when it is: a success ping would tell the monitor that the daily BACKUP ran. Each step is guarded:
// a failure is logged and never changes the drill's exit status.
import { hostname } from 'node:os';
import { drillSubject } from '../plan/drill.js';
import { escapeHtml } from './compose.js';
import { fromAddress, smtpSettingsOf, type NotifyDeps } from './after-run.js';
import { ping } from './healthcheck.js';
import { sendMessage } from './smtp.js';
import { readStatus, renderDrillPrometheus, renderPrometheus, writeAtomic, writeStatus, type DrillStatus } from './status-file.js';

export async function reportDrill(deps: NotifyDeps, drill: DrillStatus, lines: string[]): Promise<void> {
  const { config: c, log } = deps;
  const guard = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      log.warn(`${what}: ${(e as Error)?.message ?? String(e)}; the drill's own result is not affected`);
    }
  };
  let rec: DrillStatus = { ...drill, summary: log.redact(drill.summary) };
  await guard(`the status file ${c.STATUS_FILE} was not updated`, async () => {
    const prev = await readStatus(c.STATUS_FILE);
    rec = { ...rec, lastSuccessAt: rec.result === 'ok' ? rec.at : prev?.lastDrill?.lastSuccessAt };
    // The status file is the backup run's; before any run has written one there is nothing to add to.
    if (prev) await writeStatus(c.STATUS_FILE, { ...prev, lastDrill: rec });
    else log.info(`no status file yet (${c.STATUS_FILE}): the drill's result is in the log and the e-mail`);
    if (c.PROMETHEUS_TEXTFILE) await writeAtomic(c.PROMETHEUS_TEXTFILE, prev ? renderPrometheus({ ...prev, lastDrill: rec }) : renderDrillPrometheus(rec));
  });
  const host = hostname();
  const subject = drillSubject(rec.result === 'ok', host, rec.backup);
  if (c.EMAIL_NOTIFICATIONS && c.NOTIFICATION_EMAIL && (c.NOTIFY_ON === 'always' || rec.result !== 'ok')) {
    await guard('the drill e-mail was NOT delivered', async () => {
      const body = [rec.summary, '', ...lines, '', `log: ${c.LOG_FILE}`].map((l) => log.redact(l));
      const html = `<pre style="font-family:monospace">${body.map(escapeHtml).join('\n')}</pre>`;
      const r = await sendMessage(smtpSettingsOf(deps), { subject: log.redact(subject), text: body.join('\n') + '\n', html, from: fromAddress(deps), to: c.NOTIFICATION_EMAIL! }, { transport: deps.smtpTransport });
      log.info(`drill e-mail sent to ${c.NOTIFICATION_EMAIL} (${log.redact(r.response)})`);
    });
  }
  if (c.HEALTHCHECK_URL) await guard('healthcheck ping', async () => void (await ping(c.HEALTHCHECK_URL, rec.result === 'ok' ? 'log' : 'fail', { log, body: [rec.summary, ...lines].join('\n'), fetch: deps.fetch })));
}
