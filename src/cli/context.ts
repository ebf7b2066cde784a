// A command's full context: config and log (main.ts) plus the collaborators that run commands
// and talk to the box. Its own module so that the daily run loads it only once it holds the lock.
import { createExec } from '../adapters/exec.js';
import { now } from '../adapters/clock.js';
import { StorageBox } from '../adapters/storage-box.js';
import type { RunContext } from '../backup/context.js';
import type { Config } from '../config/schema.js';
import { loadConfigAndLog, type CommonFlags, type ConfigAndLog } from './main.js';

export function buildContext(flags: CommonFlags, signal: AbortSignal, consoleMode?: 'tty' | 'journal' | 'plain' | 'silent'): RunContext {
  return contextOf(loadConfigAndLog(flags, consoleMode), flags, signal);
}

/** Completes what loadConfigAndLog gave with exec and the box. */
export function contextOf({ config, configPath, log }: ConfigAndLog, flags: CommonFlags, signal: AbortSignal): RunContext {
  const exec = createExec(signal, log.redact);
  return {
    config,
    configPath,
    log,
    exec,
    signal,
    now,
    box: new StorageBox(boxTargetOf(config), exec, log),
    dryRun: Boolean(flags['dry-run']),
  };
}

export function boxTargetOf(c: Config) {
  return {
    host: c.HETZNER_HOST,
    port: c.HETZNER_PORT,
    user: c.HETZNER_USER,
    keyPath: c.SSH_KEY_PATH,
    knownHosts: c.SSH_KNOWN_HOSTS,
    connectTimeout: c.SSH_CONNECT_TIMEOUT,
  };
}
