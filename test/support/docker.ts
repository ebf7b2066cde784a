// The sandbox's fake docker CLI (src/sandbox/fake-bin/docker) as a test calls it: mailcow's dump
// container started by hand, listed, removed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fakeBinDir } from '../../src/sandbox/sandbox.js';

/** The environment the fake docker needs for a stand-in mailcow folder. */
export const dockerEnv = (mailcowPath: string) => ({ PATH: `${fakeBinDir()}:${process.env.PATH ?? '/usr/bin:/bin'}`, STANDIN_MAILCOW_PATH: mailcowPath });

export function docker(mailcowPath: string, args: string[]) {
  return spawnSync('docker', args, { env: { ...process.env, ...dockerEnv(mailcowPath) }, encoding: 'utf8' });
}

/** `docker ps -a` for mailcow's dump container: "ID\tSTATE" or '' when there is none. */
export const dumpContainer = (mailcowPath: string) => docker(mailcowPath, ['ps', '-a', '--filter', 'name=^mailcow-backup$', '--format', '{{.ID}}\t{{.State}}']).stdout.trim();

/**
 * `docker run --name mailcow-backup` of a container that says "up" and then runs until removed,
 * as an admin running mailcow's script by hand would have; resolves once it runs.
 */
export function startDumpContainer(mailcowPath: string, backupDir: string): Promise<ChildProcess> {
  const cli = spawn('docker', ['run', '--name', 'mailcow-backup', '--rm', '-v', `${backupDir}:/backup:z`, 'ghcr.io/mailcow/backup:latest', 'sh', '-c', 'echo up; exec sleep 600'], {
    env: { ...process.env, ...dockerEnv(mailcowPath) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    cli.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('up') && resolve(cli));
    cli.on('exit', (code) => reject(new Error(`docker run exited ${code} before the container ran`)));
  });
}
