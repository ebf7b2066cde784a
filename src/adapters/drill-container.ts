// The drill's throwaway containers of mailcow's SQL image: `mariabackup --prepare`, then mariadbd
// on the prepared scratch copy, queried through its socket. Each has its own name (with the
// drill's pid), no network, and only scratch folders mounted: the live mailcow is never touched.
// A container lives under the docker daemon, not under us: it is removed at the end, and the next
// drill removes any that a killed drill left.
import { DATADIR, DRILL_CONTAINER_PREFIX, pidOfDrillContainer, QUERY_SCRIPT, RUNDIR } from '../plan/drill.js';
import type { Exec } from './exec.js';
import { alive } from './lock.js';

export interface DrillContainer {
  name: string;
  image: string;
  /** Host folder of the prepared datadir (the extracted /backup_mariadb) and of its socket. */
  datadir: string;
  rundir: string;
}

const runArgs = (c: DrillContainer, withRun: boolean) => [
  'run', '--rm', '--name', c.name, '--network', 'none', '--entrypoint=',
  '-v', `${c.datadir}:${DATADIR}:z`,
  ...(withRun ? ['-v', `${c.rundir}:${RUNDIR}:z`] : []),
  c.image,
];

/** `mariabackup --prepare` as mailcow's restore would meet the archive; throws with mariabackup's last lines. */
export async function prepareDatadir(exec: Exec, c: DrillContainer, timeoutMs: number): Promise<void> {
  await exec('docker', [...runArgs(c, false), 'mariabackup', '--prepare', `--target-dir=${DATADIR}`], { what: `mariabackup --prepare in ${c.name}`, capture: true, timeoutMs, tailLines: 8 });
}

/** Starts mariadbd on the prepared copy and returns the query's tab-separated answer. */
export async function queryDatadir(exec: Exec, c: DrillContainer, dbName: string, timeoutMs: number): Promise<string> {
  const r = await exec('docker', [...runArgs(c, true), 'sh', '-c', QUERY_SCRIPT, 'drill', DATADIR, RUNDIR, dbName], { what: `the throwaway database server in ${c.name}`, capture: true, timeoutMs, tailLines: 15 });
  return r.stdout;
}

/** `docker rm -f`; a container that is already gone is no error. */
export async function removeContainer(exec: Exec, name: string): Promise<boolean> {
  const r = await exec('docker', ['rm', '-f', name], { what: `docker rm -f ${name}`, capture: true, timeoutMs: 60_000, okCodes: [0, 1] });
  return r.exitCode === 0;
}

/** Names of drill containers whose drill is gone (killed with SIGKILL, a crash, a reboot). */
export async function deadDrillContainers(exec: Exec): Promise<string[]> {
  const r = await exec('docker', ['ps', '-a', '--filter', `name=^${DRILL_CONTAINER_PREFIX}`, '--format', '{{.Names}}'], { what: 'docker ps -a (drill containers)', capture: true, timeoutMs: 30_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((n) => {
      const pid = pidOfDrillContainer(n);
      return pid !== undefined && pid !== process.pid && !alive(pid);
    });
}
