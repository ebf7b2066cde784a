// What the CLI calls around a run: notifyStart() before it (the /start ping) and
// notifyAfterRun() in its finally (status file, Prometheus file, the e-mail per NOTIFY_ON with
// the "recovered" rule, the success or /fail ping). Each step is guarded on its own: a failure
// is logged and changes neither the other steps nor the backup's exit status.
import { hostname } from 'node:os';
import type { Exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/logger.js';
import { readMailcowConf, secretsOf } from '../adapters/mailcow.js';
import type { Config } from '../config/schema.js';
import type { RunSummary } from '../plan/report.js';
import { composeReport, composeTest, resultOf, type RunResult } from './compose.js';
import { composeDigest, digestRunOf, loadDigest, planDigest, saveDigest } from './digest.js';
import { ping } from './healthcheck.js';
import { sendMessage, sendTest, smtpSettingsFrom, tlsPolicyText, type SmtpSettings, type SmtpTransportOptions, type TestOutcome } from './smtp.js';
import { nextStatus, readStatus, writePrometheus, writeStatus, type RunStatus } from './status-file.js';

export const TIMER_UNIT = 'mailcow-backup.timer';
export const SERVICE_UNIT = 'mailcow-backup.service';

export interface NotifyDeps {
  config: Config;
  log: Logger;
  now: () => Date;
  /** mailcow.conf's values (MAILCOW_HOSTNAME, and secrets to redact); read from MAILCOW_PATH when absent. */
  mailcowConf?: Record<string, string>;
  /** To ask systemd for the timer's next run; without it (or nextRun) that line is left out. */
  exec?: Exec;
  /** Overrides the systemctl question (tests). */
  nextRun?: () => Promise<string | undefined>;
  fetch?: typeof fetch;
  /** Overrides SMTP_TLS_CA (tests). */
  smtpCaFile?: string;
  /** Replaces the SMTP settings derived from the config (tests). */
  smtp?: Partial<SmtpSettings>;
  /** Replaces the nodemailer transport entirely (tests). */
  smtpTransport?: SmtpTransportOptions;
  toolVersion?: string;
  /** Another kind of run (a standby's mirror) words its e-mail and ping itself. */
  words?: { compose: typeof composeReport; pingBody: (s: RunSummary, result: RunResult, logTail: string[]) => string; logCommands?: string[] };
}

export interface NotifyOutcome {
  statusWritten: boolean;
  prometheus: 'written' | 'failed' | 'off';
  email: 'sent' | 'failed' | 'skipped' | 'off';
  /** Why the e-mail was (not) sent, in words. */
  emailNote: string;
  recovered: boolean;
  ping: 'sent' | 'failed' | 'off';
  /** NOTIFY_ON=daily: the earlier day's digest was sent now, or this run was only added to today's. */
  digest?: 'sent' | 'held' | 'failed';
}

const prepared = new WeakMap<NotifyDeps, Record<string, string> | undefined>();

/** mailcow.conf, read once; its secrets are registered with the logger's redactor. */
function mailcowConfOf(deps: NotifyDeps): Record<string, string> | undefined {
  if (prepared.has(deps)) return prepared.get(deps);
  let conf = deps.mailcowConf;
  if (!conf) {
    try {
      conf = readMailcowConf(deps.config.MAILCOW_PATH);
    } catch (e) {
      deps.log.debug(`notifications: ${(e as Error).message}`);
    }
  }
  for (const s of conf ? secretsOf(conf) : []) deps.log.addSecret(s);
  deps.log.addSecret(deps.config.SMTP_PASSWORD);
  prepared.set(deps, conf);
  return conf;
}

export function smtpSettingsOf(deps: NotifyDeps): SmtpSettings {
  const conf = mailcowConfOf(deps);
  const caFile = deps.smtpCaFile ?? deps.config.SMTP_TLS_CA;
  return { ...smtpSettingsFrom(deps.config, conf?.MAILCOW_HOSTNAME?.trim() || undefined, caFile), ...deps.smtp };
}

export function fromAddress(deps: NotifyDeps): string {
  const c = deps.config;
  if (c.NOTIFICATION_FROM) return c.NOTIFICATION_FROM;
  const domain = mailcowConfOf(deps)?.MAILCOW_HOSTNAME?.trim() || hostname();
  return `mailcow-backup@${domain}`;
}

/** The timer's next run as systemd prints it ("Thu 2025-01-16 03:07:12 CET"), if it can tell. */
export async function nextScheduledRun(exec: Exec | undefined): Promise<string | undefined> {
  if (!exec) return undefined;
  try {
    const r = await exec('systemctl', ['show', TIMER_UNIT, '-p', 'NextElapseUSecRealtime', '--value'], { what: `systemctl show ${TIMER_UNIT}`, capture: true, timeoutMs: 5000 });
    const v = r.stdout.trim();
    return v && v !== 'n/a' && v !== '0' && !/^infinity$/i.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Before the run: the /start ping (the monitor measures the run and notices one that hangs). */
export async function notifyStart(deps: NotifyDeps): Promise<void> {
  try {
    mailcowConfOf(deps);
    if (deps.config.HEALTHCHECK_URL) await ping(deps.config.HEALTHCHECK_URL, 'start', { log: deps.log, fetch: deps.fetch });
  } catch (e) {
    deps.log.warn(`start notification failed: ${(e as Error).message}`);
  }
}

/** After the run, whatever its result. Never throws. */
export async function notifyAfterRun(deps: NotifyDeps, summary: RunSummary): Promise<NotifyOutcome> {
  const { config: c, log } = deps;
  const out: NotifyOutcome = { statusWritten: false, prometheus: 'off', email: 'off', emailNote: 'EMAIL_NOTIFICATIONS is off', recovered: false, ping: 'off' };
  const guard = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      log.warn(`${what}: ${(e as Error)?.message ?? String(e)}; the backup's own result is not affected`);
    }
  };
  await guard('notifications', async () => void mailcowConfOf(deps));
  const result = resultOf(summary);

  // 1. Status file (and what the previous run left, for the "recovered" rule).
  let prev: RunStatus | undefined;
  await guard('the previous status could not be read', async () => {
    prev = await readStatus(c.STATUS_FILE);
  });
  let status: RunStatus | undefined;
  await guard(`the status file ${c.STATUS_FILE} was not written`, async () => {
    status = nextStatus(prev, summary, { now: deps.now(), redact: log.redact, toolVersion: deps.toolVersion });
    await writeStatus(c.STATUS_FILE, status);
    out.statusWritten = true;
  });
  // A streak of failures ends; an interrupted run in between neither starts nor ends one.
  out.recovered = result === 'ok' && prev !== undefined && prev.consecutiveFailures > 0;

  // 2. Prometheus textfile.
  if (c.PROMETHEUS_TEXTFILE && status) {
    const st = status;
    out.prometheus = 'failed';
    await guard(`the Prometheus file ${c.PROMETHEUS_TEXTFILE} was not written`, async () => {
      await writePrometheus(c.PROMETHEUS_TEXTFILE!, st);
      out.prometheus = 'written';
    });
  }

  // 3. E-mail per NOTIFY_ON.
  if (c.EMAIL_NOTIFICATIONS) {
    const wanted = c.NOTIFY_ON === 'always' || result === 'failed' || result === 'partial' || out.recovered;
    if (!c.NOTIFICATION_EMAIL) {
      out.email = 'skipped';
      out.emailNote = 'NOTIFICATION_EMAIL is not set';
    } else if (!wanted) {
      out.email = 'skipped';
      out.emailNote = c.NOTIFY_ON === 'daily' ? "NOTIFY_ON=daily: the run goes into the day's digest" : `NOTIFY_ON=failure and the run ${result === 'interrupted' ? 'was interrupted' : 'succeeded'}`;
    } else {
      out.email = 'failed';
      out.emailNote = 'not delivered';
      await guard('the report e-mail was NOT delivered', async () => {
        const settings = smtpSettingsOf(deps);
        const nextRun = await (deps.nextRun ? deps.nextRun().catch(() => undefined) : nextScheduledRun(deps.exec));
        const mail = (deps.words?.compose ?? composeReport)(summary, {
          redact: log.redact,
          logTail: log.tail(40),
          logCommands: deps.words?.logCommands ?? [`less +G ${c.LOG_FILE}`, `journalctl -u ${SERVICE_UNIT} -n 500`],
          nextRun,
          recovered: out.recovered,
          failingSince: prev?.failingSince,
          toolVersion: deps.toolVersion,
        });
        const r = await sendMessage(settings, { ...mail, from: fromAddress(deps), to: c.NOTIFICATION_EMAIL! }, { transport: deps.smtpTransport });
        out.email = 'sent';
        out.emailNote = r.response;
        log.info(`report e-mail sent to ${c.NOTIFICATION_EMAIL} through ${settings.host}:${settings.port} (${log.redact(r.response)})`);
      });
      if (out.email === 'failed') out.emailNote = 'not delivered (see the log)';
    }
    if (c.NOTIFY_ON === 'daily' && c.NOTIFICATION_EMAIL) {
      out.digest = 'failed';
      await guard('the daily digest e-mail was NOT delivered', async () => {
        const plan = planDigest(await loadDigest(c.STATE_DIR), digestRunOf(summary, log.redact));
        if (plan.send.length) {
          // Held until delivered: the next run tries again with it.
          await saveDigest(c.STATE_DIR, [...plan.send, ...plan.hold]);
          const mail = composeDigest(plan.send, summary.host, { redact: log.redact, toolVersion: deps.toolVersion });
          await sendMessage(smtpSettingsOf(deps), { ...mail, from: fromAddress(deps), to: c.NOTIFICATION_EMAIL! }, { transport: deps.smtpTransport });
          log.info(`daily digest of ${plan.send.length} run(s) sent to ${c.NOTIFICATION_EMAIL}`);
        }
        await saveDigest(c.STATE_DIR, plan.hold);
        out.digest = plan.send.length ? 'sent' : 'held';
      });
    }
  }

  // 4. The dead-man's switch: success, /fail with the log tail, or for an interrupted run a
  // neutral /log entry (the monitor still alerts if no success follows in time).
  if (c.HEALTHCHECK_URL) {
    await guard('healthcheck ping', async () => {
      const ok = result === 'ok';
      const body = deps.words
        ? deps.words.pingBody(summary, result, log.tail(50))
        : ok
        ? `backup ${summary.backupName} of ${summary.host} published and verified`
        : [`backup of ${summary.host} ${result === 'partial' ? `published, but ${summary.failedPhase} failed` : result === 'interrupted' ? `INTERRUPTED in ${summary.failedPhase ?? '?'}` : `FAILED in ${summary.failedPhase ?? '?'}`}: ${summary.error ?? ''}`, '', ...log.tail(50)].join('\n');
      out.ping = (await ping(c.HEALTHCHECK_URL, ok ? 'success' : result === 'interrupted' ? 'log' : 'fail', { log, body, fetch: deps.fetch })) ? 'sent' : 'failed';
    });
  }
  return out;
}

/** `backup-to-hetzner test-email`: one test message, and how the SMTP dialogue went. */
export async function runTestEmail(deps: NotifyDeps): Promise<TestOutcome & { configProblem?: string }> {
  const c = deps.config;
  if (!c.NOTIFICATION_EMAIL) {
    const problem = 'NOTIFICATION_EMAIL is not set: set it to the address that should receive the reports';
    return { ok: false, lines: [problem], encrypted: false, error: problem, configProblem: problem };
  }
  const settings = smtpSettingsOf(deps);
  const host = hostname();
  const mail = composeTest({ host, now: deps.now(), smtpTarget: `${settings.host}:${settings.port}`, tlsPolicy: tlsPolicyText(settings), redact: deps.log.redact, toolVersion: deps.toolVersion });
  const outcome = await sendTest(settings, { ...mail, from: fromAddress(deps), to: c.NOTIFICATION_EMAIL }, deps.log.redact);
  if (!c.EMAIL_NOTIFICATIONS) outcome.lines.push('note: EMAIL_NOTIFICATIONS is off, so runs do not send reports yet');
  else if (c.NOTIFY_ON === 'failure') outcome.lines.push('note: NOTIFY_ON=failure: runs report failures (and the first success after one) only');
  outcome.ok ? deps.log.info(`test e-mail delivered to ${c.NOTIFICATION_EMAIL}`) : deps.log.warn(`test e-mail NOT delivered: ${outcome.error}`);
  return outcome;
}
