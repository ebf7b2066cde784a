// Which configured paths the installed service may not write (see src/plan/unit-paths.ts), with
// the line that says so and the installer command that fixes it. Undefined: nothing to compare
// (no unit installed here, or not ProtectSystem=strict).
import { readInstalledService } from '../adapters/installed-unit.js';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { installerCommand, notAllowed, unitPathLines, unitWritablePaths, writablePaths, type WritablePath } from '../plan/unit-paths.js';

export interface UnitPathReport {
  unitPath: string;
  missing: WritablePath[];
  lines: string[];
}

export function unitPathReport(c: Config): UnitPathReport | undefined {
  const unit = readInstalledService();
  if (!unit) return undefined;
  const allowed = unitWritablePaths(unit.texts);
  if (!allowed) return undefined;
  const missing = notAllowed(writablePaths(c), allowed);
  return { unitPath: unit.path, missing, lines: unitPathLines(missing, unit.path, installerCommand(unit.texts[0]!)) };
}

/**
 * For the run: the lines to warn with. Under systemd (INVOCATION_ID is set for every unit's
 * process) a path the run itself needs fails the run now, with the fix, rather than later with
 * "read-only file system"; started by hand the run can write them, so it only warns.
 */
export function unitPathWarnings(c: Config, underSystemd: boolean): string[] {
  const r = unitPathReport(c);
  if (!r) return [];
  const fatal = r.missing.findIndex((m) => m.neededBy === 'run');
  if (underSystemd && fatal >= 0) throw new UserError('preflight', r.lines[fatal]!);
  return r.lines;
}
