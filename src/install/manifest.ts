// What an install put where, kept next to the config (/etc/mailcow-backup/install-manifest.json)
// so that --uninstall removes exactly that and --purge, which also removes the config folder,
// still knows the state, log and temp paths and which folders the install created.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const MANIFEST_NAME = 'install-manifest.json';

export interface InstallManifest {
  version: string;
  /** Host paths (as on the target system, not below --root). */
  configPath: string;
  installDir: string;
  units: string[];
  logrotateFile: string;
  links: string[];
  motdFile: string;
  /** Kept by --uninstall, removed by --purge. */
  data: { stateDir: string; tempDir: string; logFile: string; statusFile: string };
  /** The drill timer's schedule, or 'off': a re-install without --drill-calendar keeps it. */
  drillCalendar?: string;
  /** Folders created by an install (real paths), removed by --uninstall when empty. */
  createdDirs: string[];
}

export function readManifest(realInstallDir: string): InstallManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(realInstallDir, MANIFEST_NAME), 'utf8')) as InstallManifest;
  } catch {
    return undefined;
  }
}

export function renderManifest(m: InstallManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}
