// One run at a time. proper-lockfile gives an atomic mkdir lock whose mtime the holder keeps
// fresh; beside it we record who holds it, so a lock of a dead process is taken over at once
// and one older than LOCK_TIMEOUT_HOURS is taken over with a warning.
//
// mkdir and "write who holds it" cannot be one atomic step, so a run killed between the two would
// leave a lock nobody can name (proper-lockfile alone frees it only after 60 s without mtime
// updates). Every run therefore files a claim (backup.lock.claims/<pid>) before it tries the lock
// and keeps it until it lets go: a lock with no owner record and no living claimant is dead.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { UserError } from '../errors.js';
import type { Logger } from './logger.js';

export interface LockOwner {
  pid: number;
  startedAt: string;
  host: string;
  /** What holds it: 'backup run' (the default, and older records), 'restore', … */
  what?: string;
}

export interface HeldLock {
  /** Why an earlier lock was taken over, if it was (its run's leftovers need cleaning). */
  tookOver?: string;
  /** Once; later calls do nothing (the CLI's safety net after runBackup released it). */
  release(): Promise<void>;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Living claimants other than this process; claims of dead processes are swept on the way. */
function otherLivingClaims(claimsDir: string): number[] {
  const living: number[] = [];
  for (const name of readdirSync(claimsDir)) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (alive(pid)) living.push(pid);
    else rmSync(join(claimsDir, name), { force: true });
  }
  return living;
}

/**
 * `what` names the holder for whoever finds the lock taken. Only a backup run's lock is taken over
 * for its age: a restore of a large server may rightly take longer than LOCK_TIMEOUT_HOURS.
 */
export async function acquireLock(stateDir: string, timeoutHours: number, log: Logger, now = () => new Date(), what = 'backup run'): Promise<HeldLock> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lockPath = join(stateDir, 'backup.lock');
  const ownerPath = join(stateDir, 'backup.lock.owner.json');
  const claimsDir = join(stateDir, 'backup.lock.claims');
  const claimPath = join(claimsDir, String(process.pid));
  const me: LockOwner = { pid: process.pid, startedAt: now().toISOString(), host: process.env.HOSTNAME ?? '', what };
  try {
    mkdirSync(claimsDir, { recursive: true, mode: 0o700 });
    writeFileSync(claimPath, JSON.stringify(me) + '\n', { mode: 0o600 });
  } catch (e) {
    throw new UserError('preflight', `cannot create the lock ${lockPath}: ${(e as Error).message}; check STATE_DIR`);
  }
  const dropClaim = () => rmSync(claimPath, { force: true });
  const opts = { lockfilePath: lockPath, realpath: false, stale: 60_000, update: 15_000, retries: 0 } as const;
  let tookOver: string | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(stateDir, { ...opts, onCompromised: () => log.warn('the lock was taken away from this run (its folder was removed or its clock jumped)') });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') {
      dropClaim();
      throw new UserError('preflight', `cannot create the lock ${lockPath}: ${(e as Error).message}; check STATE_DIR`);
    }
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(readFileSync(ownerPath, 'utf8')) as LockOwner;
    } catch {
      owner = undefined;
    }
    const ageHours = owner ? (now().getTime() - Date.parse(owner.startedAt)) / 3_600_000 : 0;
    const holder = owner?.what ?? 'backup run';
    let who = owner ? `process ${owner.pid}, started ${owner.startedAt}` : 'another process';
    if (owner && !alive(owner.pid)) tookOver = `the lock of run ${owner.pid} (started ${owner.startedAt}) was left by a process that no longer exists`;
    else if (owner && holder === 'backup run' && ageHours > timeoutHours) tookOver = `the lock of run ${owner.pid} is ${ageHours.toFixed(1)} h old, more than LOCK_TIMEOUT_HOURS=${timeoutHours}`;
    else if (!owner) {
      const claimants = otherLivingClaims(claimsDir);
      if (claimants.length === 0) tookOver = 'the lock was left by a run that died before it could record its process';
      else who = `process ${claimants.join(', ')}, starting`;
    }
    if (!tookOver) {
      dropClaim();
      throw new UserError('locked', `${holder === 'backup run' ? 'another backup run' : `a ${holder}`} holds the lock ${lockPath} (${who}); wait for it to finish, or remove the lock if that process is gone`);
    }
    // Rename is atomic: of two runs that both found the dead lock, only one moves it away.
    const moved = `${lockPath}.stale-${process.pid}`;
    try {
      renameSync(lockPath, moved);
    } catch {
      dropClaim();
      throw new UserError('locked', `another backup run is taking over the stale lock ${lockPath} at the same moment; try again later`);
    }
    rmSync(moved, { recursive: true, force: true });
    log.warn(`taking over: ${tookOver}`);
    release = await lockfile.lock(stateDir, opts).catch(() => {
      dropClaim();
      throw new UserError('locked', `another backup run took the lock ${lockPath} at the same moment; try again later`);
    });
  }
  writeFileSync(ownerPath, JSON.stringify(me) + '\n', { mode: 0o600 });
  otherLivingClaims(claimsDir);
  let released = false;
  return {
    tookOver,
    async release() {
      if (released) return;
      released = true;
      rmSync(ownerPath, { force: true });
      await release().catch(() => undefined);
      dropClaim();
    },
  };
}
