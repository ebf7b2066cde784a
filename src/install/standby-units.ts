// The standby role's units (--role standby): mailcow-standby.service runs
// `restore-from-hetzner standby`, mailcow-standby.timer starts it hourly by default. Pure, as
// units.ts: rendered from the templates in systemd/, nothing written here.
import type { Config } from '../config/schema.js';
import { fillTemplate, readTemplate } from './templates.js';
import { unitValues, type UnitParams } from './units.js';

export const STANDBY_UNIT_NAMES = {
  service: 'mailcow-standby.service',
  timer: 'mailcow-standby.timer',
} as const;

export const DEFAULT_STANDBY_ON_CALENDAR = 'hourly';
export const DEFAULT_STANDBY_RANDOMIZED_DELAY = '5min';

export function renderStandbyUnits(p: UnitParams & { config: UnitParams['config'] & Pick<Config, 'STANDBY_DIR'> }, packageRoot?: string): { service: string; timer: string } {
  // The mirror needs no docker: no docker client config bound in.
  const values = unitValues(p, [p.config.STANDBY_DIR]);
  values.HOME_BINDS = values.HOME_BINDS!.split(' ').filter((b) => b !== '-/root/.docker').join(' ');
  return {
    service: fillTemplate(STANDBY_UNIT_NAMES.service, readTemplate(`systemd/${STANDBY_UNIT_NAMES.service}`, packageRoot), values),
    timer: fillTemplate(STANDBY_UNIT_NAMES.timer, readTemplate(`systemd/${STANDBY_UNIT_NAMES.timer}`, packageRoot), values),
  };
}
