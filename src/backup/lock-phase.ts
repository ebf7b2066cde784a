// The run's first phase, 'lock', in a module of its own: the CLI runs it before it loads the rest
// of the run (ssh, rsync, hashing, notifications), so that process start → lock costs only the
// config, the logger and this (docs/performance.md). runBackup reports its outcome as the
// run's first phase and, from then on, owns the lock.
import { acquireLock, type HeldLock } from '../adapters/lock.js';
import type { Config } from '../config/schema.js';
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
  const outcome = await phase(timings, 'lock', ctx.log, () => acquireLock(c.STATE_DIR, c.LOCK_TIMEOUT_HOURS, ctx.log, ctx.now)).then(
    (lock) => ({ lock }),
    (error: unknown) => ({ error }),
  );
  return { ...outcome, startedAt, timing: timings[0]! };
}
