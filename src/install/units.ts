// The three systemd units, rendered from the templates in systemd/. Pure: no file is written here.
import { dirname } from 'node:path';
import type { Config } from '../config/schema.js';
import { writablePaths } from '../plan/unit-paths.js';
import { UNIT_NAMES } from './layout.js';
import { fillTemplate, readTemplate } from './templates.js';

export const DEFAULT_ON_CALENDAR = '*-*-* 03:00:00';
export const DEFAULT_RANDOMIZED_DELAY = '30min';
export const DEFAULT_TIMEOUT_START = '12h';

export interface UnitParams {
  nodePath: string;
  installDir: string;
  configPath: string;
  onCalendar: string;
  randomizedDelay: string;
  timeoutStart: string;
  motdFile: string;
  config: Pick<Config, 'TEMP_BACKUP_DIR' | 'STATE_DIR' | 'LOG_FILE' | 'STATUS_FILE' | 'PROMETHEUS_TEXTFILE' | 'SSH_KEY_PATH'>;
}

export interface RenderedUnits {
  service: string;
  timer: string;
  failure: string;
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir + '/');

/** Paths the service may write; '-' means "ignore if missing" (a file the admin removed). */
export function readWritePaths(c: UnitParams['config']): string[] {
  return unique(writablePaths(c).map((p) => p.path));
}

/**
 * PrivateTmp= gives the service its own /tmp and /var/tmp, but the docker daemon writes the dump
 * into the host's TEMP_BACKUP_DIR: when that lies in /tmp or /var/tmp it is bound back in.
 */
export function tempBindLine(tempDir: string): string {
  if (under(tempDir, '/tmp') || under(tempDir, '/var/tmp')) {
    return `# TEMP_BACKUP_DIR is in /tmp or /var/tmp: the host's folder (where docker writes) is bound over the private one.\nBindPaths=${tempDir}`;
  }
  return '# (TEMP_BACKUP_DIR is outside /tmp and /var/tmp: no BindPaths= needed for the private /tmp.)';
}

/** What ProtectHome=tmpfs must give back: the SSH key's folder, docker's client config, and node if it lives in a home (nvm). */
export function homeBinds(sshKeyPath: string, nodePath = '/usr/bin/node'): string[] {
  const inHome = (p: string) => under(p, '/root') || under(p, '/home');
  const binds: string[] = [];
  if (inHome(sshKeyPath)) binds.push(dirname(sshKeyPath));
  binds.push('/root/.docker');
  if (inHome(nodePath)) binds.push(dirname(dirname(nodePath)));
  return unique(binds).map((p) => `-${p}`);
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** systemd splits these lists on spaces: refuse paths that would need quoting. */
function checkPath(what: string, p: string): string {
  if (!p.startsWith('/') || /[\s"'\\%$;]/.test(p)) throw new Error(`${what} ${JSON.stringify(p)} cannot be used in a unit file (absolute path without spaces, quotes, %, $ or \\)`);
  return p;
}

/** The templates' placeholders (paths checked); `writable`: further paths the service may write. */
export function unitValues(p: UnitParams, writable: string[] = []): Record<string, string> {
  const c = p.config;
  for (const [what, v] of Object.entries({ node: p.nodePath, 'motd file': p.motdFile, 'install folder': p.installDir, config: p.configPath, TEMP_BACKUP_DIR: c.TEMP_BACKUP_DIR, STATE_DIR: c.STATE_DIR, LOG_FILE: c.LOG_FILE, STATUS_FILE: c.STATUS_FILE, SSH_KEY_PATH: c.SSH_KEY_PATH, ...(c.PROMETHEUS_TEXTFILE ? { PROMETHEUS_TEXTFILE: c.PROMETHEUS_TEXTFILE } : {}), ...Object.fromEntries(writable.map((w) => [w, w])) })) {
    checkPath(what, v);
  }
  return {
    NODE: p.nodePath,
    INSTALL_DIR: p.installDir,
    CONFIG: p.configPath,
    ON_CALENDAR: p.onCalendar,
    RANDOMIZED_DELAY: p.randomizedDelay,
    TIMEOUT_START: p.timeoutStart,
    MOTD_FILE: p.motdFile,
    MOTD_DIR: dirname(p.motdFile),
    STATE_DIR: c.STATE_DIR,
    READ_WRITE_PATHS: unique([...readWritePaths(c), ...writable]).map((x) => `-${x}`).join(' '),
    HOME_BINDS: homeBinds(c.SSH_KEY_PATH, p.nodePath).join(' '),
  };
}

export function renderUnits(p: UnitParams, templates: { service: string; timer: string; failure: string } = loadUnitTemplates()): RenderedUnits {
  const c = p.config;
  const values = unitValues(p);
  const service = fillTemplate(UNIT_NAMES.service, templates.service, { ...values, TEMP_BIND_LINE: 'TEMP_BIND_PLACEHOLDER' }).replace('TEMP_BIND_PLACEHOLDER', tempBindLine(c.TEMP_BACKUP_DIR));
  return {
    service,
    timer: fillTemplate(UNIT_NAMES.timer, templates.timer, values),
    failure: fillTemplate(UNIT_NAMES.failure, templates.failure, values),
  };
}

export function loadUnitTemplates(packageRoot?: string) {
  return {
    service: readTemplate(`systemd/${UNIT_NAMES.service}`, packageRoot),
    timer: readTemplate(`systemd/${UNIT_NAMES.timer}`, packageRoot),
    failure: readTemplate(`systemd/${UNIT_NAMES.failure}`, packageRoot),
  };
}
