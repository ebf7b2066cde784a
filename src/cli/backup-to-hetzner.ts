#!/usr/bin/env node
// backup-to-hetzner: the command the systemd timer runs. Thin: parse flags, build the context,
// call the action, map the outcome to an exit code. Each command's modules are imported when it
// runs, --help and a bad config need none. `run` takes its lock with only the config, the logger
// and the lock code loaded, and imports the rest after that: the bundle (scripts/bundle-cli.mjs)
// is split at these dynamic imports, so Node neither parses their code nor loads the built-in
// modules they use (tls, crypto, child_process, worker_threads) before the lock.
import { parseArgs } from 'node:util';
import { summaryText } from '../plan/report.js';
import { TOOL_VERSION } from '../version.js';
import { isUserError, UserError } from '../errors.js';
import type { RunContext } from '../backup/context.js';
import { lockPhase } from '../backup/lock-phase.js';
import { now } from '../adapters/clock.js';
import { EXIT } from './exit-codes.js';
import { exitOf, installSignalHandlers, loadConfigAndLog, reportError, runMain, type CommonFlags, type ConfigAndLog } from './main.js';
import type { NotifyDeps } from '../notify/after-run.js';
import type { RunSummary } from '../plan/report.js';

const USAGE = `usage: backup-to-hetzner [COMMAND] [--config PATH] [--debug]

commands:
  run            take a backup, upload it, verify it on the box, publish it, prune (default)
  list           published backups on the Storage Box (--json for scripts)
  check          every precondition with OK/WARN/FAIL and a fix; writes only a probe it removes
  prune          apply retention now (--dry-run prints the plan and deletes nothing)
  verify [NAME…] the box re-hashes backups against their checksums.sha256 (nothing is downloaded;
                 a box without sha256sum: downloaded and hashed here): the named ones, --latest,
                 or --all (default); exit 6 when one is damaged
  status         last run, age of the newest backup on the box; exit 6 when unhealthy (--json)
  test-email     send a test report through the configured SMTP server and show the dialogue

options:
  --config PATH  config file (default /etc/mailcow-backup/.env, or $MAILCOW_BACKUP_CONFIG)
  --json         machine-readable output (list, status, verify)
  --latest, --all  which backups verify checks
  --dry-run      show what would be deleted (prune)
  --accept-shrink  run: publish this backup even if it is far smaller than the newest one
                 (SHRINK_GUARD_PERCENT); for mail removed on purpose, never on a fresh host
  --debug        more detail in the log
  --version, --help`;

const COMMANDS = ['run', 'list', 'check', 'prune', 'verify', 'status', 'test-email'] as const;

const notifyDeps = (ctx: RunContext): NotifyDeps => ({ config: ctx.config, log: ctx.log, now: ctx.now, exec: ctx.exec, toolVersion: TOOL_VERSION });

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        json: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        'accept-shrink': { type: 'boolean' },
        latest: { type: 'boolean' },
        all: { type: 'boolean' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}; see backup-to-hetzner --help\n`);
    return EXIT.config;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return EXIT.ok;
  }
  if (values.version) {
    process.stdout.write(`backup-to-hetzner ${TOOL_VERSION}\n`);
    return EXIT.ok;
  }
  const command = positionals[0] ?? 'run';
  const names = positionals.slice(1);
  if (!(COMMANDS as readonly string[]).includes(command) || (names.length > 0 && command !== 'verify')) {
    process.stderr.write(`error: unknown command '${positionals.join(' ')}'; one of ${COMMANDS.join(', ')} (see --help)\n`);
    return EXIT.config;
  }
  if (values['accept-shrink'] && command !== 'run') {
    process.stderr.write(`error: --accept-shrink is for 'run' only; see backup-to-hetzner --help\n`);
    return EXIT.config;
  }
  if (command === 'verify' && [names.length > 0, values.latest, values.all].filter(Boolean).length > 1) {
    process.stderr.write(`error: verify takes backup names, --latest or --all, not several of them; see backup-to-hetzner --help\n`);
    return EXIT.config;
  }

  const sig = installSignalHandlers();
  let base: ConfigAndLog | undefined;
  try {
    try {
      base = loadConfigAndLog(values, undefined, { deferLogFile: command === 'run' });
    } catch (e) {
      if (command !== 'check' || !isUserError(e) || e.kind !== 'config') throw e;
      // The problems on stderr as for every command; the check table on stdout, with what was not checked.
      const code = reportError(e, undefined);
      const { badConfigChecks, checkLine } = await import('../backup/check.js');
      for (const r of badConfigChecks(e.message)) process.stdout.write(checkLine(r) + '\n');
      process.stdout.write('1 check(s) failed: the backup cannot run until they are fixed\n');
      return code;
    }
    if (command === 'run') return await run(base, values, sig, !!values['accept-shrink']);
    const ctx = (await import('./context.js')).contextOf(base, values, sig.signal);
    switch (command) {
      case 'test-email': {
        const { runTestEmail } = await import('../notify/after-run.js');
        const r = await runTestEmail(notifyDeps(ctx));
        process.stdout.write(r.lines.join('\n') + '\n');
        return r.configProblem ? EXIT.config : r.ok ? EXIT.ok : EXIT.failed;
      }
      case 'status': {
        const [{ statusReport }, { listBackups }, { loadScrubState }] = await Promise.all([import('../notify/status-command.js'), import('../backup/list.js'), import('../backup/scrub.js')]);
        const c = ctx;
        const r = await statusReport({
          config: ctx.config,
          now: ctx.now,
          scrubState: () => loadScrubState(c.config.STATE_DIR),
          newestOnBox: async () => {
            await c.box.connect();
            try {
              const l = await listBackups(c, { sizes: false, records: 'newest' });
              return l[0] && { name: l[0].name, date: l[0].date, verification: l[0], encryption: l[0].encryption, dump: l[0].dump };
            } finally {
              await c.box.close();
            }
          },
        });
        process.stdout.write(values.json ? JSON.stringify(r.json, null, 2) + '\n' : r.lines.join('\n') + '\n');
        return r.healthy ? EXIT.ok : EXIT.unhealthy;
      }
      case 'list': {
        const { listBackups, listText } = await import('../backup/list.js');
        await ctx.box.connect();
        try {
          const list = await listBackups(ctx, { sizes: true, records: 'all' });
          process.stdout.write(values.json ? JSON.stringify(list, null, 2) + '\n' : listText(list).join('\n') + '\n');
        } finally {
          await ctx.box.close();
        }
        return EXIT.ok;
      }
      case 'verify': {
        const { runScrub, scrubExitCode, scrubResultText, scrubText } = await import('../backup/scrub.js');
        await ctx.box.connect();
        try {
          // Text: each backup's lines on stdout as it is done (once; not also as a log line on stderr).
          const onResult = values.json ? undefined : (r: Parameters<typeof scrubResultText>[0]) => scrubResultText(r).forEach((l) => ctx.log.result(l));
          const report = await runScrub(ctx, { names, latest: values.latest, all: values.all, onResult });
          if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
          else scrubText(report, undefined, false).forEach((l) => ctx.log.result(l));
          return scrubExitCode(report);
        } finally {
          await ctx.box.close();
        }
      }
      case 'check': {
        const { runChecks, checkLine } = await import('../backup/check.js');
        const results = await runChecks(ctx, (r) => process.stdout.write(checkLine(r) + '\n'));
        const failed = results.filter((r) => r.status === 'FAIL');
        if (failed.length) process.stdout.write(`${failed.length} check(s) failed: the backup cannot run until they are fixed\n`);
        return failed.length ? EXIT.preflight : EXIT.ok;
      }
      case 'prune': {
        const { describePlan, pruneRemote, retentionPlanFor } = await import('../backup/prune.js');
        // A prune beside a running backup could delete the folder its upload links against.
        const lock = ctx.dryRun ? undefined : await (await import('../adapters/lock.js')).acquireLock(ctx.config.STATE_DIR, ctx.config.LOCK_TIMEOUT_HOURS, ctx.log, ctx.now);
        await ctx.box.connect();
        try {
          const entries = await ctx.box.list(ctx.config.HETZNER_REMOTE_PATH);
          const plan = await retentionPlanFor(ctx, entries);
          process.stdout.write(describePlan(plan).join('\n') + '\n');
          if (!ctx.dryRun) {
            const r = await pruneRemote(ctx, ctx.config.HETZNER_REMOTE_PATH, entries, []);
            process.stdout.write(`removed ${r.removed.length} backup(s), kept ${r.kept}\n`);
          } else process.stdout.write('dry run: nothing was deleted\n');
        } finally {
          await ctx.box.close();
          await lock?.release();
        }
        return EXIT.ok;
      }
    }
    throw new UserError('config', `unknown command ${command}`);
  } catch (e) {
    return reportError(e, base?.log, sig.received());
  } finally {
    await base?.log.close();
  }
}

/** The daily run: the lock first, then the run's modules, the /start ping, the run, the report. */
async function run(base: ConfigAndLog, flags: CommonFlags, sig: ReturnType<typeof installSignalHandlers>, acceptShrink: boolean): Promise<number> {
  const c = base.config;
  base.log.info(`backup-to-hetzner ${TOOL_VERSION}: starting a backup of ${c.MAILCOW_PATH} to ${c.HETZNER_USER}@${c.HETZNER_HOST}:${c.HETZNER_REMOTE_PATH}`);
  const locked = await lockPhase({ ...base, now });
  // Busy is not failing: another run is doing the work. Logged, exit 75; no ping, no e-mail, and
  // the status file (the last run's result, the failure streak) is left to the run that works.
  if (isUserError(locked.error) && locked.error.kind === 'locked') {
    base.log.openFile();
    base.log.warn(`${locked.error.message}. This run did nothing: no report, no ping, the status file is unchanged`);
    return EXIT.locked;
  }
  try {
    const [{ contextOf }, { runBackup }, { notifyAfterRun, notifyStart }] = await Promise.all([import('./context.js'), import('../backup/run.js'), import('../notify/after-run.js')]);
    const ctx = contextOf(base, flags, sig.signal);
    const nd = notifyDeps(ctx);
    await notifyStart(nd);
    let summary: RunSummary;
    try {
      summary = await runBackup(ctx, locked, { acceptShrink });
    } catch (e) {
      // The report goes out whatever happened (a refused lock too); a failed notice never changes the exit code.
      const failed = (e as { summary?: RunSummary }).summary;
      if (failed) {
        reportError(e, ctx.log, sig.received());
        failed.exitCode = exitOf(e, sig.received());
        for (const l of summaryText(failed)) ctx.log.result(l);
        await notifyAfterRun(nd, failed);
        return failed.exitCode;
      }
      throw e;
    }
    for (const l of summaryText(summary)) ctx.log.result(l);
    await notifyAfterRun(nd, summary);
    return summary.exitCode;
  } finally {
    // runBackup releases it when it ends; this covers a failure before it began (release runs once).
    await locked.lock?.release();
  }
}

runMain(main);
