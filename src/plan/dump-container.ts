// mailcow's backup script runs every component in `docker run --name mailcow-backup --rm`. The
// container lives under the docker daemon, not under our process: a run killed during the dump can
// leave it behind, and then every later `docker run --name mailcow-backup` fails ("Conflict").
// Whose it is, and what the admin reads, is decided here; finding and removing it is the adapter's.
import { resolve, sep } from 'node:path';

export const DUMP_CONTAINER = 'mailcow-backup';

export const REMOVE_COMMAND = `docker rm -f ${DUMP_CONTAINER}`;

export interface DumpContainer {
  id: string;
  /** docker's state: running, exited, created, … */
  state: string;
  /** When docker says it started (or was created), as docker prints it. */
  startedAt?: string;
  /** Host folder mounted at /backup, where the script writes the archive ('' if none; undefined if docker did not say). */
  backupSource?: string;
}

/** What this tool knows about earlier runs, apart from the container itself. */
export interface RunEvidence {
  /** Each run's dump goes into TEMP_BACKUP_DIR/run-…: a container writing there is one of ours. */
  tempDir: string;
  runDirPrefix: string;
  /** The lock of a dead (or timed-out) run was taken over by this run. */
  tookOver?: string;
  /** STATE_DIR records that a run, now dead, was in its dump. */
  deadDump?: { pid: number; startedAt: string };
}

export type Verdict = { ours: true; why: string } | { ours: false };

/**
 * Ours when it writes into one of our run folders (we hold the lock, so that run is dead or was
 * taken over); when docker does not say where it writes, when our own records say a dead run was
 * dumping or left its lock. A container writing elsewhere is someone else's, whatever we know.
 */
export function judgeDumpContainer(c: DumpContainer, ev: RunEvidence): Verdict {
  if (c.backupSource !== undefined) {
    const runs = resolve(ev.tempDir) + sep + ev.runDirPrefix;
    if (c.backupSource && resolve(c.backupSource).startsWith(runs)) return { ours: true, why: `it writes into ${c.backupSource}, a folder of this tool's runs` };
    return { ours: false };
  }
  if (ev.deadDump) return { ours: true, why: `run ${ev.deadDump.pid} (started ${ev.deadDump.startedAt}) died during its dump` };
  if (ev.tookOver) return { ours: true, why: ev.tookOver };
  return { ours: false };
}

const describe = (c: DumpContainer) => `${c.id ? `${c.id}, ` : ''}${c.state}${c.startedAt ? `, started ${c.startedAt}` : ''}`;

export function removedMessage(c: DumpContainer, why: string): string {
  return `removed the docker container ${DUMP_CONTAINER} (${describe(c)}) that a dead run of this tool left behind (${why}), and its half-written dump`;
}

/** `consequence`: what this tool did not do because of it ('nothing was dumped' for a run). */
export function foreignMessage(c: DumpContainer, consequence = 'nothing was dumped'): string {
  return (
    `a docker container named ${DUMP_CONTAINER} already exists (${describe(c)}${c.backupSource ? `, writing to ${c.backupSource}` : ''}) and no run of this tool left it: ` +
    `mailcow's backup script is probably running by hand; ${consequence}. Run again when it is done; if it is stale, remove it: ${REMOVE_COMMAND}`
  );
}

/** docker's refusal to start a second container of the same name, as mailcow's script prints it. */
export const CONFLICT_LINE = /Conflict\. The container name "\/mailcow-backup" is already in use/;

export function conflictMessage(line: string): string {
  return (
    `mailcow's backup script could not start its container: ${line.trim()} ` +
    `(another backup by mailcow's script started meanwhile, or one is stuck); nothing was published. Run again when it is done; if it is stale, remove it: ${REMOVE_COMMAND}`
  );
}
