// Installing again is how the tool is upgraded: the schedule, delay and timeout of the units
// already installed (set by an earlier install's flags, or edited in the unit), and the program
// folder of the last install, are kept unless a flag changes them, and every value that changes
// is said.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UNIT_NAMES } from './layout.js';
import type { InstallOptions, UnitSetting } from './options.js';
import { DEFAULT_ON_CALENDAR, DEFAULT_RANDOMIZED_DELAY, DEFAULT_TIMEOUT_START } from './units.js';

const SETTINGS: Record<UnitSetting, { unit: keyof typeof UNIT_NAMES; key: string; flag: string; what: string; default: string }> = {
  onCalendar: { unit: 'timer', key: 'OnCalendar', flag: '--on-calendar', what: 'schedule', default: DEFAULT_ON_CALENDAR },
  randomizedDelay: { unit: 'timer', key: 'RandomizedDelaySec', flag: '--randomized-delay', what: 'randomized delay', default: DEFAULT_RANDOMIZED_DELAY },
  timeoutStart: { unit: 'service', key: 'TimeoutStartSec', flag: '--timeout', what: 'start timeout', default: DEFAULT_TIMEOUT_START },
};

/** Pure: every value of `KEY=` in a unit file's text, in order (our keys are unique to one section). */
export function unitValues(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^[ \\t]*${key}[ \\t]*=[ \\t]*(.*?)[ \\t]*$`, 'gm'))].map((m) => m[1]!).filter(Boolean);
}

/** The values of the units in `realUnitDir`; empty when nothing is installed there. */
export function installedSettings(realUnitDir: string): Partial<Record<UnitSetting, string[]>> {
  const out: Partial<Record<UnitSetting, string[]>> = {};
  for (const [s, d] of Object.entries(SETTINGS) as [UnitSetting, (typeof SETTINGS)[UnitSetting]][]) {
    let text: string;
    try {
      text = readFileSync(join(realUnitDir, UNIT_NAMES[d.unit]), 'utf8');
    } catch {
      continue;
    }
    const values = unitValues(text, d.key);
    if (values.length) out[s] = values;
  }
  return out;
}

export interface Settled {
  values: Record<UnitSetting, string>;
  /** One line per value that changes, or that is kept though it is not the default. */
  lines: { warn: boolean; text: string }[];
}

/** Pure: a flag wins; without one, the installed value stays; a fresh install takes the defaults. */
export function settleSettings(opts: Pick<InstallOptions, UnitSetting | 'fromFlags'>, installed: Partial<Record<UnitSetting, string[]>>): Settled {
  const values = { onCalendar: opts.onCalendar, randomizedDelay: opts.randomizedDelay, timeoutStart: opts.timeoutStart };
  const lines: Settled['lines'] = [];
  for (const [s, d] of Object.entries(SETTINGS) as [UnitSetting, (typeof SETTINGS)[UnitSetting]][]) {
    const all = installed[s];
    const old = all?.[all.length - 1];
    if (old === undefined) continue;
    if (all!.length > 1) lines.push({ warn: true, text: `the installed ${UNIT_NAMES[d.unit]} has ${all!.length} ${d.key}= lines; only the last ('${old}') is kept: put more in a drop-in (systemctl edit ${UNIT_NAMES[d.unit]})` });
    if (!opts.fromFlags[s]) {
      values[s] = old;
      if (old !== d.default) lines.push({ warn: false, text: `${d.what} '${old}' kept from the installed ${UNIT_NAMES[d.unit]} (${d.flag} changes it)` });
    } else if (old !== values[s]) {
      lines.push({ warn: false, text: `${d.what} changes: '${old}' -> '${values[s]}' (${d.flag})` });
    }
  }
  return { values, lines };
}

/** Pure: the program folder: --install-dir, else the last install's (its manifest), else the default. */
export function settleInstallDir(opts: Pick<InstallOptions, 'installDir' | 'fromFlags'>, previous: string | undefined): { installDir: string; line?: string } {
  if (previous === undefined || previous === opts.installDir) return { installDir: opts.installDir };
  if (!opts.fromFlags.installDir) return { installDir: previous, line: `program folder ${previous} kept from the last install (--install-dir changes it)` };
  return { installDir: opts.installDir, line: `program folder changes: ${previous} -> ${opts.installDir} (--install-dir); the old folder is left as it is: remove it with rm -r ${previous}` };
}
