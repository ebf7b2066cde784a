// The container mailcow's backup script runs each component in, as docker reports it.
import { DUMP_CONTAINER, type DumpContainer } from '../plan/dump-container.js';
import type { Exec } from './exec.js';

interface Inspected {
  Id?: string;
  Created?: string;
  State?: { Status?: string; StartedAt?: string };
  Mounts?: { Source?: string; Destination?: string }[];
}

/** docker's zero time: a container that never started. */
const NEVER = /^0001-01-01/;

/** The container named mailcow-backup, running or not; undefined when there is none. */
export async function findDumpContainer(exec: Exec): Promise<DumpContainer | undefined> {
  const ps = await exec('docker', ['ps', '-a', '--filter', `name=^${DUMP_CONTAINER}$`, '--format', '{{.ID}}\t{{.State}}\t{{.Names}}'], {
    what: `docker ps -a --filter name=^${DUMP_CONTAINER}$`,
    capture: true,
    timeoutMs: 30_000,
    errorKind: 'preflight',
  });
  const row = ps.stdout
    .split('\n')
    .map((l) => l.split('\t'))
    .find((f) => f[2] === DUMP_CONTAINER);
  if (!row) return undefined;
  const found: DumpContainer = { id: row[0] ?? '', state: row[1] || 'unknown' };
  // Details are a bonus: without them the verdict rests on what this tool recorded itself.
  const r = await exec('docker', ['inspect', DUMP_CONTAINER], { what: `docker inspect ${DUMP_CONTAINER}`, capture: true, timeoutMs: 30_000 }).catch(() => undefined);
  let info: Inspected | undefined;
  try {
    info = r ? (JSON.parse(r.stdout) as Inspected[])[0] : undefined;
  } catch {
    info = undefined;
  }
  if (!info) return found;
  const started = info.State?.StartedAt && !NEVER.test(info.State.StartedAt) ? info.State.StartedAt : info.Created;
  return {
    id: found.id,
    state: info.State?.Status ?? found.state,
    startedAt: started,
    // '' when docker lists no /backup mount: then it is not a container of mailcow's script.
    backupSource: info.Mounts?.find((m) => m.Destination === '/backup')?.Source ?? '',
  };
}

export async function removeDumpContainer(exec: Exec): Promise<void> {
  await exec('docker', ['rm', '-f', DUMP_CONTAINER], { what: `docker rm -f ${DUMP_CONTAINER}`, capture: true, timeoutMs: 60_000, errorKind: 'preflight' });
}
