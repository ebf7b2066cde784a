// `restore-from-hetzner standby`: what the standby timer runs. Its own lock (STATE_DIR/standby.lock,
// also taken by a restore on a standby host), the /start ping, the mirror, then the report through
// the backup's channels: status file, Prometheus file, e-mail per NOTIFY_ON, healthcheck ping.
import { acquireLock } from '../adapters/lock.js';
import type { RunContext } from '../backup/context.js';
import { EXIT } from '../cli/exit-codes.js';
import { exitOf, reportError } from '../cli/main.js';
import { isUserError, UserError } from '../errors.js';
import { notifyAfterRun, notifyStart, type NotifyDeps } from '../notify/after-run.js';
import { composeStandbyReport, STANDBY_SERVICE_UNIT, standbyPingBody, standbySummaryText } from '../notify/standby-report.js';
import { readStatus } from '../notify/status-file.js';
import type { RunSummary } from '../plan/report.js';
import { TOOL_VERSION } from '../version.js';
import { runMirror } from './mirror.js';

export async function standbyCommand(ctx: RunContext, signalReceived: () => NodeJS.Signals | undefined): Promise<number> {
  const c = ctx.config;
  // On the primary its report would overwrite the backup's status file and metrics.
  if (c.ROLE !== 'standby') throw new UserError('config', `this host is not a standby (ROLE=${c.ROLE} in ${ctx.configPath}); 'restore-from-hetzner standby' runs on a second host whose config says ROLE=standby (install it with --role standby)`);
  let lock;
  try {
    lock = await acquireLock(c.STATE_DIR, c.LOCK_TIMEOUT_HOURS, ctx.log, ctx.now, 'standby mirror run', 'standby');
  } catch (e) {
    // Busy is not failing (as for the backup): logged, exit 75, no report, the status file unchanged.
    if (isUserError(e) && e.kind === 'locked') {
      ctx.log.warn(`${e.message}. This run did nothing: no report, no ping, the status file is unchanged`);
      return EXIT.locked;
    }
    throw e;
  }
  const nd: NotifyDeps = {
    config: c,
    log: ctx.log,
    now: ctx.now,
    exec: ctx.exec,
    toolVersion: TOOL_VERSION,
    nextRun: async () => undefined,
    words: { compose: composeStandbyReport, pingBody: standbyPingBody, logCommands: [`less +G ${c.LOG_FILE}`, `journalctl -u ${STANDBY_SERVICE_UNIT} -n 500`] },
  };
  try {
    if (lock.tookOver) ctx.log.warn(`taking over: ${lock.tookOver}`);
    const previous = (await readStatus(c.STATUS_FILE).catch(() => undefined))?.mirror;
    await notifyStart(nd);
    let summary: RunSummary;
    try {
      summary = await runMirror(ctx, { previous });
    } catch (e) {
      const failed: RunSummary = (e as { summary?: RunSummary }).summary ?? { ok: false, host: '', startedAt: ctx.now().toISOString(), finishedAt: ctx.now().toISOString(), phases: [], exitCode: 1, components: [], warnings: [], logFile: c.LOG_FILE, error: String(e), failedPhase: 'list' };
      reportError(e, ctx.log, signalReceived());
      failed.exitCode = exitOf(e, signalReceived());
      for (const l of standbySummaryText(failed)) ctx.log.result(l);
      await notifyAfterRun(nd, failed);
      return failed.exitCode;
    }
    for (const l of standbySummaryText(summary)) ctx.log.result(l);
    await notifyAfterRun(nd, summary);
    return summary.exitCode;
  } finally {
    await lock.release();
  }
}
