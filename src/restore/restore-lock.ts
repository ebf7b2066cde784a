// A restore holds the backup lock from the moment it changes this host until it is done: a timer's
// backup run must not dump a half-restored mailcow and publish it as the newest backup (retention
// would then count it), and a restore must not change the volumes under a running dump. A restore
// waits for a running backup run rather than fail after a long download. On a standby host it
// waits the same way for a running mirror run (`lock: 'standby'`), which must not rotate away the
// copies the restore takes its files from.
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock, type HeldLock } from '../adapters/lock.js';
import type { RunContext } from '../backup/context.js';
import { isUserError, UserError } from '../errors.js';

export const RESTORE_LOCK_POLL_MS = 2000;

export async function lockForRestore(ctx: RunContext, progress: (line: string) => void, lock: 'backup' | 'standby' = 'backup'): Promise<HeldLock> {
  for (let told = false; ; told = true) {
    try {
      return await acquireLock(ctx.config.STATE_DIR, ctx.config.LOCK_TIMEOUT_HOURS, ctx.log, ctx.now, 'restore', lock);
    } catch (e) {
      if (!isUserError(e) || e.kind !== 'locked') throw e;
      if (!told) progress(`waiting until ${e.message.replace(/ holds the lock .*\((process [^,)]+).*$/, ' ($1)')} has finished: nothing on this host is changed before that`);
    }
    try {
      await sleep(RESTORE_LOCK_POLL_MS, undefined, { signal: ctx.signal });
    } catch {
      throw new UserError('interrupted', 'interrupted while waiting for the run that holds the lock to finish; nothing on this host was changed');
    }
  }
}
