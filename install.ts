#!/usr/bin/env node
// The installer (run as root): `node dist/install.js` after `npm ci && npm run build`.
// Thin: parse the flags, pick the answerer (terminal, --yes, or none), call src/install/, and turn
// errors into one line and an exit code (2 bad flags or values, 4 failed preflight).
import { parseArgs } from 'node:util';
import { createExec } from './src/adapters/exec.js';
import { EXIT, exitCodeFor } from './src/cli/exit-codes.js';
import { isUserError, UserError } from './src/errors.js';
import { findPackageRoot } from './src/install/layout.js';
import { consoleOut } from './src/install/ops.js';
import { PARSE_OPTIONS, resolveOptions, USAGE, type Flags } from './src/install/options.js';
import { inquirerAsker, unattendedAsker } from './src/install/prompts.js';
import { runInstall } from './src/install/run.js';
import { runUninstall } from './src/install/uninstall.js';

async function main(argv: string[]): Promise<number> {
  let flags: Flags;
  try {
    const parsed = parseArgs({ args: argv, options: PARSE_OPTIONS, allowPositionals: false, strict: true });
    flags = parsed.values as Flags;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}; see --help\n`);
    return EXIT.config;
  }
  if (flags.help) {
    process.stdout.write(USAGE + '\n');
    return EXIT.ok;
  }
  const out = consoleOut();
  const ac = new AbortController();
  const stop = (s: NodeJS.Signals) => {
    process.stderr.write(`\nreceived ${s}: stopping\n`);
    ac.abort(new UserError('interrupted', `interrupted by ${s}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const opts = resolveOptions(flags);
    const exec = createExec(ac.signal);
    if (opts.uninstall) return await runUninstall(opts, { exec, out });
    if (!opts.yes && !process.stdin.isTTY && !opts.dryRun) {
      throw new UserError('config', 'stdin is not a terminal, so nothing can be asked: pass --yes for an unattended install (with --host, --user, ... or --env-file)');
    }
    const asker = opts.yes || (opts.dryRun && !process.stdin.isTTY) ? unattendedAsker() : inquirerAsker();
    return await runInstall(opts, { exec, asker, out, packageRoot: findPackageRoot() });
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`error: ${e.message}\n`);
      for (const d of e.details.slice(0, 30)) process.stderr.write(`  ${d}\n`);
      return exitCodeFor(e.kind);
    }
    if ((e as Error)?.name === 'ExitPromptError') {
      process.stderr.write('\ninstall cancelled; nothing more was changed\n');
      return EXIT.interrupted;
    }
    process.stderr.write(`error: internal error (this should never happen): ${(e as Error)?.message ?? String(e)}; please report it\n`);
    return EXIT.internal;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
