// Before the dump: mailcow's dump container (`mailcow-backup`) must not exist, or every component's
// `docker run --name mailcow-backup` fails. One left by a dead run of ours is removed with its
// half-written dump; anyone else's is left alone and the run stops before the dump.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findDumpContainer, removeDumpContainer } from '../adapters/dump-container.js';
import { alive } from '../adapters/lock.js';
import { UserError } from '../errors.js';
import { foreignMessage, judgeDumpContainer, removedMessage } from '../plan/dump-container.js';
import type { RunContext } from './context.js';
import { removeStaleRunDirs, RUN_DIR_PREFIX } from './dump.js';

/** STATE_DIR/dump-running.json: written before mailcow's script starts, removed when it ends. */
const recordPath = (stateDir: string) => join(stateDir, 'dump-running.json');

interface DumpRecord {
  pid: number;
  startedAt: string;
}

/** Runs mailcow's script with a record of it in STATE_DIR, so a run killed meanwhile is known later. */
export async function withDumpRecord<T>(ctx: RunContext, fn: () => Promise<T>): Promise<T> {
  const path = recordPath(ctx.config.STATE_DIR);
  const me: DumpRecord = { pid: process.pid, startedAt: ctx.now().toISOString() };
  writeFileSync(path, JSON.stringify(me) + '\n', { mode: 0o600 });
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function deadDump(stateDir: string): DumpRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(recordPath(stateDir), 'utf8')) as DumpRecord;
    return r.pid !== process.pid && !alive(r.pid) ? r : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns what was removed (for the report), undefined when there was nothing; throws 'dump-busy'
 * when the container is not ours. A docker that cannot list containers is only warned about:
 * mailcow's script needs it anyway and will say so.
 */
export async function clearLeftoverContainer(ctx: RunContext, tookOver: string | undefined, consequence?: string, keepRunDir?: string): Promise<string | undefined> {
  const c = ctx.config;
  const dead = deadDump(c.STATE_DIR);
  let found;
  try {
    found = await findDumpContainer(ctx.exec);
  } catch (e) {
    ctx.log.warn(`cannot look for a leftover container of mailcow's backup script: ${(e as Error).message}`);
    return undefined;
  }
  if (!found) {
    if (dead) rmSync(recordPath(c.STATE_DIR), { force: true });
    return undefined;
  }
  const verdict = judgeDumpContainer(found, { tempDir: c.TEMP_BACKUP_DIR, runDirPrefix: RUN_DIR_PREFIX, tookOver, deadDump: dead });
  if (!verdict.ours) throw new UserError('dump-busy', foreignMessage(found, consequence));
  await removeDumpContainer(ctx.exec);
  for (const d of await removeStaleRunDirs(ctx, keepRunDir)) ctx.log.info(`removed the leftover ${d} of the dead run`);
  rmSync(recordPath(c.STATE_DIR), { force: true });
  const msg = removedMessage(found, verdict.why);
  ctx.log.warn(msg);
  return msg;
}
