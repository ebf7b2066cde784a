// The standby role's units (--role standby): mailcow-standby.service runs
// `restore-from-hetzner standby`, mailcow-standby.timer starts it hourly by default. Pure, as
// units.ts: rendered from the templates in systemd/, nothing written here.
import { fillTemplate, readTemplate } from './templates.js';
import { homeBinds, readWritePaths, type UnitParams } from './units.js';
import type { Config } from '../config/schema.js';
import { dirname } from 'node:path';

export const STANDBY_UNIT_NAMES = {
  service: 'mailcow-standby.service',
  timer: 'mailcow-standby.timer',
} as const;

export const DEFAULT_STANDBY_ON_CALENDAR = 'hourly';
export const DEFAULT_STANDBY_RANDOMIZED_DELAY = '5min';

export function renderStandbyUnits(p: UnitParams & { config: UnitParams['config'] & Pick<Config, 'STANDBY_DIR'> }, packageRoot?: string): { service: string; timer: string } {
  const c = p.config;
  const values: Record<string, string> = {
    NODE: p.nodePath,
    INSTALL_DIR: p.installDir,
    CONFIG: p.configPath,
    ON_CALENDAR: p.onCalendar,
    RANDOMIZED_DELAY: p.randomizedDelay,
    TIMEOUT_START: p.timeoutStart,
    MOTD_FILE: p.motdFile,
    STATE_DIR: c.STATE_DIR,
    READ_WRITE_PATHS: [...readWritePaths(c), c.STANDBY_DIR].map((x) => `-${x}`).join(' '),
    HOME_BINDS: homeBinds(c.SSH_KEY_PATH, p.nodePath).filter((b) => b !== '-/root/.docker').join(' '),
    MOTD_DIR: dirname(p.motdFile),
  };
  return {
    service: fillTemplate(STANDBY_UNIT_NAMES.service, readTemplate(`systemd/${STANDBY_UNIT_NAMES.service}`, packageRoot), values),
    timer: fillTemplate(STANDBY_UNIT_NAMES.timer, readTemplate(`systemd/${STANDBY_UNIT_NAMES.timer}`, packageRoot), values),
  };
}
