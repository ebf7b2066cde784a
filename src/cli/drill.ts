// `restore-from-hetzner drill`: proves that a published backup restores, on this host, without
// touching the live mailcow. Thin: flags, context, the drill, its report, the exit code
// (0 restorable, 6 NOT restorable, 1 the drill could not run).
import { parseArgs } from 'node:util';
import type { RunContext } from '../backup/context.js';
import { errorText, isUserError } from '../errors.js';
import { reportDrill } from '../notify/drill-report.js';
import type { DrillStatus } from '../notify/status-file.js';
import { drillSummaryLine, type DrillOutcome } from '../plan/drill.js';
import { runDrill } from '../restore/drill.js';
import { TOOL_VERSION } from '../version.js';
import { buildContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { exitOf, installSignalHandlers } from './main.js';

export const DRILL_USAGE = `usage: restore-from-hetzner drill [--backup NAME|latest] [--identity FILE] [--json] [--config PATH]

Fetches a backup into a private scratch folder under TEMP_BACKUP_DIR, verifies every file,
decrypts it (with --identity or AGE_IDENTITY_FILE), opens its database with mariabackup and a
throwaway database server of mailcow's own SQL image (no network), sets its mailboxes against
the mail and its crypt keys against the messages, then removes everything it made. The live
mailcow is never stopped, changed or written to.
exit 0: the backup restores; 6: it does NOT (the FAIL lines say why); 1: the drill could not run.`;

export async function drillMain(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        backup: { type: 'string' },
        identity: { type: 'string' },
        json: { type: 'boolean' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}; see restore-from-hetzner drill --help\n`);
    return EXIT.config;
  }
  if (values.help) {
    process.stdout.write(DRILL_USAGE + '\n');
    return EXIT.ok;
  }
  if (values.identity !== undefined && !values.identity.startsWith('/') && !values.identity.startsWith('.')) {
    process.stderr.write('error: --identity needs the path of an age identity file, e.g. --identity /root/mailcow-backup.agekey\n');
    return EXIT.config;
  }
  const sig = installSignalHandlers();
  let ctx: RunContext | undefined;
  const lines: string[] = [];
  const out = (l: string) => {
    lines.push(l);
    if (!values.json) process.stdout.write(l + '\n');
  };
  try {
    ctx = buildContext({ config: values.config, debug: values.debug }, sig.signal, values.json ? 'silent' : undefined);
  } catch (e) {
    process.stderr.write(`error: ${errorText(e)}\n`);
    return exitOf(e);
  }
  let outcome: DrillOutcome | undefined;
  let failure: unknown;
  try {
    await ctx.box.connect();
    try {
      outcome = await runDrill(ctx, { backup: values.backup ?? 'latest', identity: values.identity }, (l) => (out(l), ctx!.log.debug(l)));
    } finally {
      await ctx.box.close();
    }
  } catch (e) {
    failure = e;
  }
  const signal = sig.received();
  const code = signal || failure ? (signal ? exitOf(failure, signal) : isUserError(failure) && failure.kind === 'config' ? EXIT.config : EXIT.failed) : outcome!.verdict === 'OK' ? EXIT.ok : EXIT.unhealthy;
  const summary = signal
    ? `drill interrupted by ${signal}: its container and scratch folder are removed; nothing of the live mailcow was touched`
    : failure
      ? `drill could not run: ${errorText(failure)}`
      : drillSummaryLine(outcome!);
  if (failure || signal) ctx.log.error(summary);
  else ctx.log.info(summary);
  if (values.json) process.stdout.write(JSON.stringify({ ...outcome, exitCode: code, summary: ctx.log.redact(summary) }, null, 2) + '\n');
  else if (!failure && !signal) process.stdout.write(summary + '\n');
  if (!signal) {
    const st: DrillStatus = {
      at: ctx.now().toISOString(),
      backup: outcome?.backup,
      result: failure ? 'error' : outcome!.verdict === 'OK' ? 'ok' : 'failed',
      exitCode: code,
      summary,
      domains: outcome?.domains,
      mailboxes: outcome?.mailboxes,
      messages: outcome?.messages,
      bytes: outcome?.bytes,
      fetchMs: outcome?.fetchMs,
      openMs: outcome?.openMs,
    };
    await reportDrill({ config: ctx.config, log: ctx.log, now: ctx.now, exec: ctx.exec, toolVersion: TOOL_VERSION }, st, lines);
  }
  await ctx.log.close();
  return code;
}
