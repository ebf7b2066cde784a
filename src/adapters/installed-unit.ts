// The installed mailcow-backup.service and its drop-ins (systemctl edit), as text, for the run and
// `check` to compare with the config. Nothing installed (a development machine): undefined.
// MAILCOW_BACKUP_UNIT_DIR points elsewhere (an install made with --root, the tests).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS, UNIT_NAMES } from '../install/layout.js';

export function readInstalledService(unitDir: string = process.env.MAILCOW_BACKUP_UNIT_DIR || DEFAULTS.unitDir): { path: string; texts: string[] } | undefined {
  const path = join(unitDir, UNIT_NAMES.service);
  let main: string;
  try {
    main = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const dropDir = `${path}.d`;
  let dropIns: string[] = [];
  try {
    dropIns = readdirSync(dropDir).filter((n) => n.endsWith('.conf')).sort();
  } catch {
    // no drop-ins
  }
  return { path, texts: [main, ...dropIns.map((n) => readFileSync(join(dropDir, n), 'utf8'))] };
}
