// Where everything goes. Paths are those of the target host ("/etc/..."); under --root they are
// written below that folder instead, and the units still name the host paths.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = 'mailcow-cold-standby';

/** The folder holding our package.json, found upwards from this file (works from src/ and dist/). */
export function findPackageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`internal: cannot find the ${PACKAGE_NAME} package root above ${from}`);
    dir = up;
  }
}

export const UNIT_NAMES = {
  service: 'mailcow-backup.service',
  timer: 'mailcow-backup.timer',
  failure: 'mailcow-backup-failure@.service',
} as const;

export interface Layout {
  /** '/' or the --root folder. */
  root: string;
  installDir: string;
  configDir: string;
  configPath: string;
  unitDir: string;
  logrotateFile: string;
  binDir: string;
  /** Marker the failure hook writes and a successful run removes; shown at login by pam_motd. */
  motdFile: string;
}

export const DEFAULTS = {
  installDir: '/opt/mailcow-cold-standby',
  configDir: '/etc/mailcow-backup',
  unitDir: '/etc/systemd/system',
  logrotateFile: '/etc/logrotate.d/mailcow-backup',
  binDir: '/usr/local/bin',
  motdFile: '/run/motd.d/mailcow-backup-failed',
} as const;

export function layoutFor(root: string, installDir: string = DEFAULTS.installDir, configPath?: string): Layout {
  const configDir = configPath ? dirname(configPath) : DEFAULTS.configDir;
  return {
    root: resolve(root),
    installDir,
    configDir,
    configPath: configPath ?? join(DEFAULTS.configDir, '.env'),
    unitDir: DEFAULTS.unitDir,
    logrotateFile: DEFAULTS.logrotateFile,
    binDir: DEFAULTS.binDir,
    motdFile: DEFAULTS.motdFile,
  };
}

/**
 * The real location of a host path: below --root, unless it already is (a test names files in
 * its temporary root directly, e.g. SSH_KEY_PATH=<root>/root/.ssh/id_ed25519).
 */
export function rooted(root: string, hostPath: string): string {
  const r = resolve(root);
  if (r === '/') return hostPath;
  if (hostPath === r || hostPath.startsWith(r + '/')) return hostPath;
  return join(r, hostPath);
}
