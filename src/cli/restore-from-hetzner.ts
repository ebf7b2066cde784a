#!/usr/bin/env node
// restore-from-hetzner: the wizard on a terminal, or the same engine unattended with --yes.
// Thin: flags, context, engine, exit code.
import { parseArgs } from 'node:util';
import { listBackups, listText } from '../backup/list.js';
import type { RunContext } from '../backup/context.js';
import { COMPONENTS, type Component } from '../config/schema.js';
import { isUserError } from '../errors.js';
import { executeRestore, prepareRestore, type RestoreReport } from '../restore/engine.js';
import { parseComponents, type Mode } from '../restore/plan.js';
import { checkLine, runWizard } from '../restore/wizard.js';
import { listSnapshotBackups, snapshotListText } from '../restore/snapshot-list.js';
import { TOOL_VERSION } from '../version.js';
import { EXIT } from './exit-codes.js';
import { buildContext } from './context.js';
import { exitOf, installSignalHandlers, reportError, runMain } from './main.js';

const USAGE = `usage: restore-from-hetzner [--config PATH]                       (wizard, on a terminal)
       restore-from-hetzner --backup NAME|latest --components LIST --yes
       restore-from-hetzner --backup NAME|latest --mailbox ADDR [--mode replace|merge] --yes
       restore-from-hetzner --backup NAME|latest --download-only DIR [--components LIST]
       restore-from-hetzner --list [--snapshots] [--json]
       (an encrypted backup also needs --identity PATH; the wizard asks for it)

options:
  --config PATH        config file (default /etc/mailcow-backup/.env, or $MAILCOW_BACKUP_CONFIG)
  --backup NAME        a published backup (mailcow-YYYY-MM-DD-HH-MM-SS) or 'latest'; NAME@SNAPSHOT
                       (or latest@SNAPSHOT): the backup as one of the box's ZFS snapshots holds it
  --components LIST    ${COMPONENTS.join(',')} or all
  --mailbox ADDR       restore one user's mail only (repeat it or give a comma list)
  --mode MODE          mailbox restore: merge (default: the backup's mail comes back as a
                       "Restored-<date>" folder, nothing is removed) or replace (the mailbox
                       becomes the backup: the plan names the mail that is removed)
  --yes                run without questions (required without a terminal)
  --check-only         print the pre-restore checks and the plan, change nothing
  --download-only DIR  fetch and verify into DIR for mailcow's own script; touch nothing else
  --keep-download      keep the verified download after the restore
  --identity PATH      age identity file (private key) for an encrypted backup; checked on the
                       backup's small mailcow.conf.age before anything big is downloaded
  --list               published backups on the box (--json for scripts)
  --snapshots          with --list: the backups inside the box's ZFS snapshots, as NAME@SNAPSHOT
  --json               machine-readable output
  --debug              more detail in the log
  --version, --help`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        backup: { type: 'string' },
        components: { type: 'string' },
        mailbox: { type: 'string', multiple: true },
        mode: { type: 'string' },
        yes: { type: 'boolean' },
        'check-only': { type: 'boolean' },
        'download-only': { type: 'string' },
        'keep-download': { type: 'boolean' },
        identity: { type: 'string' },
        list: { type: 'boolean' },
        snapshots: { type: 'boolean' },
        json: { type: 'boolean' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}; see restore-from-hetzner --help\n`);
    return EXIT.config;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return EXIT.ok;
  }
  if (values.version) {
    process.stdout.write(`restore-from-hetzner ${TOOL_VERSION}\n`);
    return EXIT.ok;
  }
  const bad = (msg: string) => {
    process.stderr.write(`error: ${msg}\n`);
    return EXIT.config;
  };
  if (values.snapshots && !values.list) return bad('--snapshots goes with --list (restore-from-hetzner --list --snapshots); to restore from a snapshot give --backup NAME@SNAPSHOT');
  const mailboxes = (values.mailbox ?? []).flatMap((m) => m.split(',')).map((m) => m.trim()).filter(Boolean);
  let components: Component[] = [];
  try {
    if (values.components) components = parseComponents(values.components);
  } catch (e) {
    return bad(`--components: ${(e as Error).message}`);
  }
  // Unattended, nothing is removed unless asked for: the default keeps the mail that arrived since.
  const mode = (values.mode ?? 'merge') as Mode;
  if (mode !== 'replace' && mode !== 'merge') return bad(`--mode must be replace or merge, not '${values.mode}'`);
  const downloadOnly = values['download-only'];
  const identity = values.identity;
  if (identity !== undefined && !identity.startsWith('/') && !identity.startsWith('.')) return bad('--identity needs the path of an age identity file, e.g. --identity /root/mailcow-backup.agekey');
  if (downloadOnly !== undefined && !downloadOnly.startsWith('/') && !downloadOnly.startsWith('.')) return bad('--download-only needs a folder path');
  if (downloadOnly !== undefined && components.length === 0 && mailboxes.length === 0) components = [...COMPONENTS];
  const unattended = Boolean(values.yes || values['check-only'] || downloadOnly !== undefined || values.list);
  if (!values.list && unattended && components.length === 0 && mailboxes.length === 0) return bad('say what to restore: --components vmail,crypt,... (or all) and/or --mailbox user@domain');
  if (!unattended && !(process.stdin.isTTY && process.stdout.isTTY)) {
    return bad('no terminal to ask questions on: refusing rather than waiting. Run unattended with --yes, e.g. restore-from-hetzner --backup latest --components all --yes (or --check-only first)');
  }

  const sig = installSignalHandlers();
  let ctx: RunContext | undefined;
  const out = (l: string) => process.stdout.write(l + '\n');
  try {
    ctx = buildContext({ config: values.config, debug: values.debug }, sig.signal, values.json ? 'silent' : undefined);
    await ctx.box.connect();
    try {
      if (values.list && values.snapshots) {
        const l = await listSnapshotBackups(ctx);
        out(values.json ? JSON.stringify(l, null, 2) : snapshotListText(l, ctx.now()).join('\n'));
        return EXIT.ok;
      }
      if (values.list) {
        const list = await listBackups(ctx, { sizes: true, records: 'all' });
        out(values.json ? JSON.stringify(list, null, 2) : listText(list).join('\n'));
        return EXIT.ok;
      }
      let report: RestoreReport | undefined;
      if (!unattended) {
        report = await runWizard(ctx, out, identity);
        if (!report) return EXIT.ok;
      } else {
        const prep = await prepareRestore(ctx, { backup: values.backup ?? 'latest', components, mailboxes, mode, downloadOnly, keepDownload: values['keep-download'], identity });
        const fails = prep.checks.filter((c) => c.status === 'FAIL');
        if (values.json && values['check-only']) {
          out(JSON.stringify({ backup: prep.name, checks: prep.checks, plan: prep.plan }, null, 2));
          return fails.length ? EXIT.preflight : EXIT.ok;
        }
        out(`pre-restore checks for ${prep.name}:`);
        for (const c of prep.checks) out(`  ${checkLine(c)}`);
        if (mailboxes.length && values.mode === undefined) out(`mailbox mode: merge (the default; nothing in the mailbox is removed). --mode replace makes it exactly as in the backup`);
        out('plan:');
        for (const l of prep.plan) out(`  ${l}`);
        if (values['check-only']) {
          out(fails.length ? `${fails.length} check(s) failed: the restore would refuse to start; nothing was changed` : 'check only: nothing was changed');
          return fails.length ? EXIT.preflight : EXIT.ok;
        }
        report = await executeRestore(ctx, prep, { progress: (l) => ctx!.log.info(l), tty: Boolean(process.stderr.isTTY) });
      }
      if (values.json) out(JSON.stringify(report, null, 2));
      else {
        if (report.restored.length) out(`restored from ${report.name}: ${report.restored.join(', ')}`);
        if (report.skipped.length) out(`skipped: ${report.skipped.join(', ')}`);
        if (report.containers) out(`mailcow containers: ${report.containers.up} of ${report.containers.total} up${report.containers.down.length ? ` (NOT up: ${report.containers.down.join(', ')})` : ''}`);
        if (report.downloadedTo) out(`verified download: ${report.downloadedTo}`);
        for (const n of report.next) out(`next: ${n}`);
        out(`log: ${ctx.config.LOG_FILE}`);
      }
      return report.containers && report.containers.down.length ? EXIT.partial : EXIT.ok;
    } finally {
      await ctx.box.close();
    }
  } catch (e) {
    // Errors of the restore step itself say what state the host is in; before it, nothing changed.
    if (isUserError(e) && e.phase === 'restore') {
      const msg = e.message;
      ctx ? ctx.log.error(msg) : process.stderr.write(`error: ${msg}\n`);
      return exitOf(e, sig.received());
    }
    if (sig.received()) {
      const msg = `interrupted by ${sig.received()} before the restore touched anything: this host is unchanged`;
      ctx ? ctx.log.error(msg) : process.stderr.write(`error: ${msg}\n`);
      return exitOf(e, sig.received());
    }
    if (e && (e as { name?: string }).name === 'ExitPromptError') {
      process.stderr.write('cancelled: nothing was changed\n');
      return EXIT.interrupted;
    }
    return reportError(e, ctx?.log);
  } finally {
    await ctx?.log.close();
  }
}

runMain(main);
