// Shared by both commands: load the config and open the log, turn errors into one line and an
// exit code from the table, and turn SIGINT/SIGTERM into a clean stop. Only what the daily run
// needs before its lock is taken: the rest of the context (exec, the box) is in context.ts,
// loaded after the lock (start-up time, docs/performance.md).
import { consoleModeFor, createLogger, type Logger } from '../adapters/logger.js';
import { configPathFrom, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isUserError, UserError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

export interface CommonFlags {
  config?: string;
  debug?: boolean;
  'dry-run'?: boolean;
}

/** Ctrl-C and systemd's SIGTERM abort every child; the command's finally blocks clean up. */
export function installSignalHandlers(): { signal: AbortSignal; received: () => NodeJS.Signals | undefined } {
  const ac = new AbortController();
  let got: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals) => {
    if (got) return; // a second Ctrl-C while cleaning up changes nothing
    got = s;
    process.stderr.write(`\nreceived ${s}: stopping, releasing the lock and removing temporary files...\n`);
    ac.abort(new UserError('interrupted', `interrupted by ${s}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal: ac.signal, received: () => got };
}

/** The config and the logger of a command: the part of its context that needs no adapter. */
export interface ConfigAndLog {
  config: Config;
  configPath: string;
  log: Logger;
}

/** deferLogFile: the daily run opens LOG_FILE itself once it holds the lock (start-up time). */
export function loadConfigAndLog(flags: CommonFlags, consoleMode?: 'tty' | 'journal' | 'plain' | 'silent', o: { deferLogFile?: boolean } = {}): ConfigAndLog {
  const path = configPathFrom(flags.config);
  const { config, warnings } = loadConfig(path);
  const log = createLogger({ logFile: config.LOG_FILE, debug: flags.debug, console: consoleMode, deferFile: o.deferLogFile });
  log.addSecret(config.SMTP_PASSWORD);
  for (const w of warnings) log.warn(w);
  return { config, configPath: path, log };
}

/** Before the logger exists (a bad config): the same console format the logger would use. */
function printError(line: string, indent?: string): void {
  const mode = consoleModeFor(process.stderr);
  process.stderr.write(mode === 'journal' ? `<3>${indent ?? ''}${line}\n` : `${indent ?? 'error: '}${line}\n`);
}

/** The exit code an error stands for, from the one table in exit-codes.ts. */
export function exitOf(e: unknown, signalReceived?: NodeJS.Signals): number {
  if (signalReceived) return signalReceived === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
  if (isUserError(e)) {
    const summary = (e as { summary?: { exitCode: number } }).summary;
    return summary?.exitCode === EXIT.partial ? EXIT.partial : exitCodeFor(e.kind);
  }
  return EXIT.internal;
}

/** Prints an error the way an admin should read it: one line (plus details), no stack. */
export function reportError(e: unknown, log: Logger | undefined, signalReceived?: NodeJS.Signals): number {
  if (signalReceived) {
    const msg = `interrupted by ${signalReceived}: nothing was published by this run; the lock is released and temporary files removed`;
    log ? log.error(msg) : printError(msg);
    return exitOf(e, signalReceived);
  }
  if (isUserError(e)) {
    log ? log.error(e.message) : printError(e.message);
    // Every detail: each producer bounds its own list, and a config error names each bad key.
    for (const d of e.details) log ? log.info(`  ${d}`) : printError(d, '  ');
    return exitOf(e);
  }
  const err = e as Error;
  const msg = `internal error (this should never happen): ${err?.message ?? String(e)}; please report it with the log`;
  if (log) {
    log.error(msg);
    log.debug(err?.stack ?? '');
  } else printError(msg);
  return EXIT.internal;
}

/**
 * A reader that went away (`run | head -1`, a closed terminal) must not stop a run half-way: Node
 * ignores SIGPIPE, but an unhandled EPIPE 'error' on stdout or stderr would end the process, e.g.
 * after publishing and before retention and the status file. Later lines still reach LOG_FILE.
 */
export function surviveClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/** Runs a command's main and sets the exit code; anything that escapes is a bug, said as such. */
export function runMain(main: (argv: string[]) => Promise<number>): void {
  surviveClosedOutput();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`error: internal error (this should never happen): ${(e as Error)?.message}\n`);
      process.exitCode = EXIT.internal;
    },
  );
}
