// The built-in sandbox: a loopback Storage Box (real sshd + the box's restricted shell), a
// stand-in mailcow with fixture mail, a fake docker CLI that knows its volumes, and a config
// file pointing at all of it. Used by the demo, the tests and the benchmark.
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStandinMailcow, type StandinMailcow, type StandinMailcowOptions } from './mailcow-standin.js';
import { startStorageBox, type StorageBox } from './storage-box.js';
import { enableStandinDovecot, stopStandinDovecot, type StandinDovecotOptions } from './dovecot-standin.js';

export interface Sandbox {
  dir: string;
  box: StorageBox;
  mailcow: StandinMailcow;
  configPath: string;
  /** Environment for the tool's processes: the fake docker first on PATH. */
  env: Record<string, string>;
  remotePath: string;
  stop(): Promise<void>;
}

export interface SandboxOptions {
  dir: string;
  mailBytes?: number;
  seed?: number;
  strict?: boolean;
  hardlinksFail?: boolean;
  /** The box refuses sha256sum: verification falls back to rsync --checksum. */
  noSha256sum?: boolean;
  mailcow?: StandinMailcowOptions;
  /** Extra or overriding config lines. */
  config?: Record<string, string>;
  /** Real dovecot behind `docker compose exec dovecot-mailcow doveadm …` (off: doveadm calls are only logged). */
  dovecot?: StandinDovecotOptions;
}

export function fakeBinDir(): string {
  const candidates = [fileURLToPath(new URL('./fake-bin', import.meta.url)), fileURLToPath(new URL('../../../src/sandbox/fake-bin', import.meta.url))];
  return candidates.find((c) => existsSync(join(c, 'docker')))!;
}

export async function createSandbox(o: SandboxOptions): Promise<Sandbox> {
  await mkdir(o.dir, { recursive: true });
  const box = await startStorageBox({ dir: join(o.dir, 'box'), strict: o.strict ?? true, hardlinksFail: o.hardlinksFail ?? false, noSha256sum: o.noSha256sum ?? false });
  try {
    const mailcow = await createStandinMailcow(join(o.dir, 'mailcow'), {
      seed: o.seed ?? 1,
      ...o.mailcow,
      maildir: { seed: o.seed ?? 1, totalBytes: o.mailBytes ?? 2 * 1024 * 1024, ...o.mailcow?.maildir },
    });
    if (o.dovecot) await enableStandinDovecot(mailcow.path, o.dovecot);
    const remotePath = 'backups/mailcow';
    const values: Record<string, string> = {
      HETZNER_HOST: box.host,
      HETZNER_PORT: String(box.port),
      HETZNER_USER: box.user,
      SSH_KEY_PATH: box.clientKeyPath,
      SSH_KNOWN_HOSTS: box.knownHostsPath,
      HETZNER_REMOTE_PATH: remotePath,
      MAILCOW_PATH: mailcow.path,
      BACKUP_COMPONENTS: 'all',
      THREADS: '1',
      TEMP_BACKUP_DIR: join(o.dir, 'tmp'),
      STATE_DIR: join(o.dir, 'state'),
      STATUS_FILE: join(o.dir, 'state', 'status.json'),
      LOG_FILE: join(o.dir, 'log', 'mailcow-backup.log'),
      REMOTE_RETENTION_DAYS: '30',
      // Every run dumps, as every test and the demo were written for; hourly tests set their interval.
      DUMP_INTERVAL_HOURS: '0',
      ...o.config,
    };
    const configPath = join(o.dir, 'mailcow-backup.env');
    await writeFile(configPath, Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
    await chmod(configPath, 0o600);
    const env = {
      PATH: `${fakeBinDir()}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      STANDIN_MAILCOW_PATH: mailcow.path,
      // The sandbox's paths are not judged against a unit this machine may have installed.
      MAILCOW_BACKUP_UNIT_DIR: join(o.dir, 'no-units'),
    };
    return { dir: o.dir, box, mailcow, configPath, env, remotePath, stop: async () => {
      await stopStandinDovecot(mailcow.path);
      await box.stop();
    } };
  } catch (e) {
    await box.stop();
    throw e;
  }
}
