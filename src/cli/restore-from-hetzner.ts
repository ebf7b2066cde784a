#!/usr/bin/env node
// restore-from-hetzner: the wizard on a terminal, or the same engine unattended with --yes.
// Thin: flags, context, engine, exit code.
import { parseArgs } from 'node:util';
import { listBackups, listText } from '../backup/list.js';
import type { RunContext } from '../backup/context.js';
import { COMPONENTS, type Component } from '../config/schema.js';
import { isUserError } from '../errors.js';
import { executeRestore, fetchedLine, prepareRestore, type RestoreReport } from '../restore/engine.js';
import { parseComponents, type Mode } from '../restore/plan.js';
import { checkLine, runWizard } from '../restore/wizard.js';
import { listSnapshotBackups, snapshotListText } from '../restore/snapshot-list.js';
import { TOOL_VERSION } from '../version.js';
import { importMessages, searchMessages, type SearchSession } from '../restore/messages.js';
import { foundLines, parseSince, splitQuery } from '../plan/message-search.js';
import { bytes } from '../plan/human.js';
import { EXIT } from './exit-codes.js';
import { buildContext } from './context.js';
import { exitOf, installSignalHandlers, reportError, runMain } from './main.js';

const USAGE = `usage: restore-from-hetzner [--config PATH]                       (wizard, on a terminal)
       restore-from-hetzner --backup NAME|latest --components LIST --yes
       restore-from-hetzner --backup NAME|latest --mailbox ADDR [--mode replace|merge] --yes
       restore-from-hetzner --backup NAME|latest --download-only DIR [--components LIST]
       restore-from-hetzner --list [--snapshots] [--json]
       restore-from-hetzner --mailbox ADDR --search QUERY [--folder NAME]
                            [--backup NAME|latest | --since DATE] [--yes] [--json]
       restore-from-hetzner standby             (a standby host: mirror the newest backup; its timer runs it)
       restore-from-hetzner status [--json]     (the last run, and on a standby the mirror and its lag)
       restore-from-hetzner drill [--backup NAME|latest] [--identity FILE] [--json]   (see drill --help)
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
  --search QUERY       find messages of --mailbox in the backups (newest first) with dovecot's
                       search language (subject invoice from bob, since 2026-11-01, ...; see
                       'man doveadm-search-query'); lists them, --yes restores them into the
                       folder "Restored-<today>" (a message the mailbox still has is skipped)
  --folder NAME        with --search: only this folder (INBOX, Sent, Archive/2024, ...)
  --since DATE         with --search: only backups made on or after DATE (YYYY-MM-DD)
  --snapshots          with --list: the backups inside the box's ZFS snapshots, as NAME@SNAPSHOT
  --json               machine-readable output
  --debug              more detail in the log
  --version, --help`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'drill') return (await import('./drill.js')).drillMain(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
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
        search: { type: 'string' },
        folder: { type: 'string' },
        since: { type: 'string' },
        snapshots: { type: 'boolean' },
        json: { type: 'boolean' },
        debug: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}; see restore-from-hetzner --help\n`);
    return EXIT.config;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (positionals.length > 1 || (command !== undefined && command !== 'standby' && command !== 'status')) {
    process.stderr.write(`error: unknown command '${positionals.join(' ')}'; 'standby', 'status', or none (the restore); see restore-from-hetzner --help\n`);
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
  if (command) {
    const sig = installSignalHandlers();
    let ctx: RunContext | undefined;
    try {
      ctx = buildContext({ config: values.config, debug: values.debug }, sig.signal, values.json ? 'silent' : undefined);
      if (command === 'status') return await (await import('./status.js')).runStatus(ctx, Boolean(values.json));
      return await (await import('../standby/command.js')).standbyCommand(ctx, sig.received);
    } catch (e) {
      return reportError(e, ctx?.log, sig.received());
    } finally {
      await ctx?.log.close();
    }
  }
  const bad = (msg: string) => {
    process.stderr.write(`error: ${msg}\n`);
    return EXIT.config;
  };
  if (values.snapshots && !values.list) return bad('--snapshots goes with --list (restore-from-hetzner --list --snapshots); to restore from a snapshot give --backup NAME@SNAPSHOT');
  const mailboxes = (values.mailbox ?? []).flatMap((m) => m.split(',')).map((m) => m.trim()).filter(Boolean);
  if (values.search !== undefined || values.folder !== undefined || values.since !== undefined) return searchCommand(values, mailboxes, bad);
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
    // On a standby host a restore reads the mirrored copies: the mirror run must not rotate them meanwhile.
    const c = ctx;
    const lock = c.config.ROLE === 'standby' && !values.list && !values['check-only'] ? await (await import('../restore/restore-lock.js')).lockForRestore(c, (l) => c.log.info(l), 'standby') : undefined;
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
        if (report.fetched) out(fetchedLine(report.fetched));
        if (report.containers) out(`mailcow containers: ${report.containers.up} of ${report.containers.total} up${report.containers.down.length ? ` (NOT up: ${report.containers.down.join(', ')})` : ''}`);
        if (report.downloadedTo) out(`verified download: ${report.downloadedTo}`);
        for (const n of report.next) out(`next: ${n}`);
        out(`log: ${ctx.config.LOG_FILE}`);
      }
      return report.containers && report.containers.down.length ? EXIT.partial : EXIT.ok;
    } finally {
      await ctx.box.close();
      await lock?.release();
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

/** --search: find messages across backups, list them, restore them with --yes. */
async function searchCommand(values: { config?: string; debug?: boolean; search?: string; folder?: string; since?: string; backup?: string; yes?: boolean; json?: boolean }, mailboxes: string[], bad: (m: string) => number): Promise<number> {
  if (values.search === undefined) return bad('--folder and --since go with --search QUERY, e.g. --mailbox alice@example.com --search subject invoice --folder INBOX');
  if (mailboxes.length !== 1) return bad('--search needs exactly one --mailbox user@domain');
  const query = splitQuery(values.search);
  if (query.length === 0) return bad("--search needs a query in dovecot's search language, e.g. --search 'subject invoice from bob' (or 'all')");
  const since = values.since === undefined ? undefined : parseSince(values.since);
  if (values.since !== undefined && !since) return bad(`--since must be a date like 2026-11-20, not '${values.since}'`);
  if (since && values.backup) return bad('give --backup or --since, not both');
  const sig = installSignalHandlers();
  let ctx: RunContext | undefined;
  const out = (l: string) => process.stdout.write(l + '\n');
  let session: SearchSession | undefined;
  let importing = false;
  try {
    ctx = buildContext({ config: values.config, debug: values.debug }, sig.signal, values.json ? 'silent' : undefined);
    await ctx.box.connect();
    try {
      session = await searchMessages(ctx, { mailbox: mailboxes[0]!, query, folder: values.folder, backup: values.backup, since }, (l) => ctx!.log.info(l));
      const r = session.result;
      importing = Boolean(values.yes && r.found.length);
      const restore = importing ? await importMessages(session, r.found) : undefined;
      if (values.json) out(JSON.stringify({ ...r, restore }, null, 2));
      else {
        const searched = `${r.searched.length} backup(s) searched: ${r.searched.join(', ')}${r.without.length ? ` (${r.without.length} without mail of ${r.mailbox}${values.folder === undefined ? '' : ` in ${values.folder}`}: ${r.without.join(', ')})` : ''}`;
        if (r.found.length === 0) out(`no message of ${r.mailbox} matches '${values.search}'; ${searched}`);
        else {
          out(`${r.found.length} message(s) of ${r.mailbox} match '${values.search}', newest first (each from the newest backup that has it):`);
          for (const l of foundLines(r.found, bytes)) out(`  ${l}`);
          out(searched);
          if (restore) out(`restored ${restore.restored} message(s) into folder ${restore.folder} of ${r.mailbox}; ${restore.skipped} skipped (still in the mailbox)`);
          else out(`to restore them into folder "Restored-<today>": run the same command with --yes`);
        }
      }
      return EXIT.ok;
    } finally {
      await session?.remove().catch(() => undefined);
      await ctx.box.close();
    }
  } catch (e) {
    if (sig.received()) {
      const msg = `interrupted by ${sig.received()}: the fetched copies are removed; ${importing ? 'messages imported before it stay in the mailbox; the same search again skips them as still in the mailbox' : 'nothing was restored'}`;
      ctx ? ctx.log.error(msg) : process.stderr.write(`error: ${msg}\n`);
      return exitOf(e, sig.received());
    }
    return reportError(e, ctx?.log);
  } finally {
    await ctx?.log.close();
  }
}

runMain(main);
