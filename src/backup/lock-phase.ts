// The run's first phase, 'lock', in a module of its own: the CLI runs it before it loads the rest
// of the run (ssh, rsync, hashing, notifications), so that process start → lock costs only the
// config, the logger and this (docs/performance.md). runBackup reports its outcome as the
// run's first phase and, from then on, owns the lock.
import { acquireLock, type HeldLock } from '../adapters/lock.js';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { Logger } from '../adapters/logger.js';
import { phase, type PhaseTiming } from './context.js';

/** The held lock, or the error that says why there is none (tagged with phase 'lock'). */
export interface LockPhase {
  /** When the lock phase began: the run's start (its duration covers every phase). */
  startedAt: Date;
  timing: PhaseTiming;
  lock?: HeldLock;
  error?: unknown;
}

/** Never rejects: a refused lock is the run's failure, reported by runBackup like any phase's. */
export async function lockPhase(ctx: { config: Config; log: Logger; now: () => Date }): Promise<LockPhase> {
  const timings: PhaseTiming[] = [];
  const c = ctx.config;
  const startedAt = ctx.now();
  const outcome = await phase(timings, 'lock', ctx.log, () => acquireLock(c.STATE_DIR, c.LOCK_TIMEOUT_HOURS, ctx.log, ctx.now).catch((e: unknown) => explainReadOnly(e, c))).then(
    (lock) => ({ lock }),
    (error: unknown) => ({ error }),
  );
  return { ...outcome, startedAt, timing: timings[0]! };
}

/**
 * A STATE_DIR changed in .env after the install is read-only for the timer's run (the unit's
 * ReadWritePaths= names the old one), and node reports that as ENOENT or EROFS. When the lock
 * cannot be made (not: another run holds it) and the installed unit does not allow STATE_DIR,
 * say that and the command that fixes it. Loaded only on this path, so the lock costs no more.
 */
async function explainReadOnly(e: unknown, c: Config): Promise<never> {
  if (!(e instanceof UserError && e.kind === 'locked')) {
    const { unitPathReport } = await import('./unit-paths.js');
    const line = unitPathReport(c)?.lines.find((l) => l.startsWith('STATE_DIR='));
    if (line) throw new UserError('preflight', `${line} (the lock: ${(e as Error)?.message ?? String(e)})`);
  }
  throw e;
}
