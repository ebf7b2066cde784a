// The installer's options: from the command line (install.ts parses it with node:util parseArgs),
// the environment (MCB_<KEY>) and an --env-file, checked here. Bad values are config errors (exit 2).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'dotenv';
import { unknownKeyWarnings } from '../config/load.js';
import { KEY_DOCS } from '../config/schema.js';
import { UserError } from '../errors.js';
import { DEFAULTS } from './layout.js';
import { DEFAULT_ON_CALENDAR, DEFAULT_RANDOMIZED_DELAY, DEFAULT_TIMEOUT_START } from './units.js';
import { DEFAULT_DRILL_CALENDAR } from './drill-units.js';
import { FREQUENT_RANDOMIZED_DELAY, periodHoursOf, scheduleDefaults } from './schedule.js';

export const USAGE = `usage: node dist/install.js [options]            (as root)
       node dist/install.js --uninstall [--purge]

Installs mailcow cold standby: config in /etc/mailcow-backup/.env, the program in
/opt/mailcow-cold-standby, commands in /usr/local/bin, and a daily systemd timer.
Every question can be answered by a flag, an MCB_<KEY> environment variable or --env-file.

unattended use:
  -y, --yes                 ask nothing: use the given values or the defaults; a required value
                            that is missing stops the install and names the flag to give
  --env-file FILE           config values to start from (e.g. the bash tool's .env)
  --dry-run                 print every file it would write and command it would run; write nothing
  --root DIR                install below DIR instead of /; no systemctl, no check (unless --check)
  --uninstall               remove units, logrotate file, commands and program; keep config,
                            state, logs and local dumps (backups on the box are never touched)
  --purge                   with --uninstall: also remove config, state, logs and local dumps

role:
  --role primary|standby    primary (default): this host is backed up by a daily timer.
                            standby: a second host that mirrors the newest backup into STANDBY_DIR
                            (restore-from-hetzner standby, hourly by default, and once right after
                            the install); no backup timer, and ROLE=standby in a new config

schedule (installing again keeps what the installed units have unless one of these is given):
  --on-calendar SPEC        when the timer runs (default '${DEFAULT_ON_CALENDAR}'; systemd.time(7))
  --randomized-delay SPAN   RandomizedDelaySec= of the timer (default ${DEFAULT_RANDOMIZED_DELAY})
  --timeout SPAN            TimeoutStartSec= of the service (default ${DEFAULT_TIMEOUT_START})
  --drill-calendar SPEC     when the restore drill runs (default '${DEFAULT_DRILL_CALENDAR}'; 'off': no drill timer)
  --dump-interval HOURS     DUMP_INTERVAL_HOURS: hours between database dumps (default 24); runs
                            in between back up the mail only. A schedule more often than daily
                            (--on-calendar hourly) also sets, in a new .env: STALE_AFTER_HOURS
                            2 x its period + 2, NOTIFY_ON=daily, KEEP_HOURLY=48, REMOTE_RETENTION_DAYS=2
                            with KEEP_DAILY=30 (not 720 hourly backups), and a 5min delay

config values (an existing .env is never changed: edit it instead):
  --host HOST               HETZNER_HOST, e.g. u123456.your-storagebox.de
  --user USER               HETZNER_USER, e.g. u123456 or u123456-sub1
  --port PORT               HETZNER_PORT (default 23)
  --remote-path PATH        HETZNER_REMOTE_PATH (default backups/mailcow)
  --ssh-key PATH            SSH_KEY_PATH (default /root/.ssh/id_ed25519; generated if missing)
  --mailcow-path DIR        MAILCOW_PATH (default: found, or /opt/mailcow-dockerized)
  --retention-days N        REMOTE_RETENTION_DAYS (default 30)
  --email ADDRESS           NOTIFICATION_EMAIL, and turns EMAIL_NOTIFICATIONS on
  --set KEY=VALUE           any other key of .env.example (repeatable)
  --config PATH             where the config goes (default ${DEFAULTS.configDir}/.env)

steps:
  --accept-host-key FP      pin the box's host key even though it is not one of Hetzner's
                            published Storage Box keys (FP as shown, SHA256:...)
  --no-keygen               do not generate an SSH key when SSH_KEY_PATH is missing
  --skip-npm                copy the production dependencies from this checkout's node_modules
                            instead of 'npm ci --omit=dev' (offline; the default under --root)
  --install-dir DIR         where the program goes (default ${DEFAULTS.installDir})
  --check                   run 'backup-to-hetzner check' even under --root
  --skip-check              do not run 'backup-to-hetzner check' after installing
  --first-backup            start the first backup right away (asked otherwise; not under --yes)
  --enable-timer            enable the backup timer even when this host's mailcow looks freshly
                            installed while the box holds backups (held back otherwise: restore first)
  -h, --help`;

/** Flags that set one config key each (also asked by the interactive install). */
export const VALUE_FLAGS = {
  host: 'HETZNER_HOST',
  user: 'HETZNER_USER',
  port: 'HETZNER_PORT',
  'remote-path': 'HETZNER_REMOTE_PATH',
  'ssh-key': 'SSH_KEY_PATH',
  'mailcow-path': 'MAILCOW_PATH',
  'retention-days': 'REMOTE_RETENTION_DAYS',
  email: 'NOTIFICATION_EMAIL',
} as const;

export const flagFor = (key: string): string => {
  const f = Object.entries(VALUE_FLAGS).find(([, k]) => k === key)?.[0];
  return f ? `--${f} VALUE` : `--set ${key}=VALUE`;
};

/** The parseArgs option table install.ts uses. */
export const PARSE_OPTIONS = {
  yes: { type: 'boolean', short: 'y' },
  'env-file': { type: 'string' },
  'dry-run': { type: 'boolean' },
  root: { type: 'string' },
  uninstall: { type: 'boolean' },
  purge: { type: 'boolean' },
  'on-calendar': { type: 'string' },
  'drill-calendar': { type: 'string' },
  'dump-interval': { type: 'string' },
  'randomized-delay': { type: 'string' },
  timeout: { type: 'string' },
  host: { type: 'string' },
  user: { type: 'string' },
  port: { type: 'string' },
  'remote-path': { type: 'string' },
  'ssh-key': { type: 'string' },
  'mailcow-path': { type: 'string' },
  'retention-days': { type: 'string' },
  email: { type: 'string' },
  set: { type: 'string', multiple: true },
  config: { type: 'string' },
  'accept-host-key': { type: 'string' },
  'no-keygen': { type: 'boolean' },
  'skip-npm': { type: 'boolean' },
  'install-dir': { type: 'string' },
  check: { type: 'boolean' },
  'skip-check': { type: 'boolean' },
  'first-backup': { type: 'boolean' },
  'enable-timer': { type: 'boolean' },
  role: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Flags = { [K in keyof typeof PARSE_OPTIONS]?: (typeof PARSE_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof PARSE_OPTIONS)[K]['type'] extends 'string' ? string : boolean };

export interface InstallOptions {
  uninstall: boolean;
  purge: boolean;
  yes: boolean;
  dryRun: boolean;
  /** '/' or the --root folder (absolute). */
  root: string;
  installDir: string;
  /** Host path of the config file. */
  configPath: string;
  onCalendar: string;
  /** The restore drill's OnCalendar=; undefined: no drill timer ('off'). */
  drillCalendar?: string;
  randomizedDelay: string;
  timeoutStart: string;
  acceptHostKey?: string;
  keygen: boolean;
  skipNpm: boolean;
  /** true: run check; false: do not; undefined: the default (run unless --root). */
  check?: boolean;
  firstBackup: boolean;
  /** Enable the timer even on a host that looks freshly installed while the box holds backups. */
  enableTimer: boolean;
  /** Config values given by the user, highest priority first merged: flags > MCB_ env > --env-file. */
  given: Record<string, string>;
  /** Where each given value came from, for messages. */
  givenFrom: Record<string, string>;
  envFile?: string;
  /** --role: undefined when not given (the config's ROLE decides, primary for a new one). */
  role?: 'primary' | 'standby';
  /** Problems worth a WARN line that do not stop the install (unknown keys in --env-file). */
  warnings: string[];
  /** Which values a flag set; the others keep what the installed units (and the last install) have. */
  fromFlags: Record<UnitSetting | 'installDir' | 'drillCalendar', boolean>;
}

export type UnitSetting = 'onCalendar' | 'randomizedDelay' | 'timeoutStart';

const KNOWN_KEYS = new Set(KEY_DOCS.map((k) => k.key));
const SPAN = /^[0-9]+(\.[0-9]+)?\s*(us|ms|s|sec|m|min|h|hr|d|day|w|week)?(\s+[0-9]+(\.[0-9]+)?\s*(us|ms|s|sec|m|min|h|hr|d|day|w|week)?)*$|^infinity$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

function absolute(flag: string, v: string): string {
  if (!v.startsWith('/')) throw new UserError('config', `${flag} must be an absolute path, not '${v}'`);
  return resolve(v);
}

export function resolveOptions(flags: Flags, env: NodeJS.ProcessEnv = process.env): InstallOptions {
  if (flags.purge && !flags.uninstall) throw new UserError('config', '--purge only goes with --uninstall; to remove everything: --uninstall --purge');
  if (flags.check && flags['skip-check']) throw new UserError('config', '--check and --skip-check contradict each other; give one');
  const onCalendar = flags['on-calendar'] ?? DEFAULT_ON_CALENDAR;
  if (!onCalendar.trim() || /[\n\r\0]/.test(onCalendar)) throw new UserError('config', `--on-calendar '${onCalendar}' is not a calendar spec; e.g. --on-calendar '*-*-* 03:00:00'`);
  const drillCalendar = (flags['drill-calendar'] ?? DEFAULT_DRILL_CALENDAR).trim();
  if (!drillCalendar || /[\n\r\0]/.test(drillCalendar)) throw new UserError('config', `--drill-calendar '${drillCalendar}' is not a calendar spec; e.g. --drill-calendar 'Sun *-*-* 05:00:00', or off`);
  // Runs more often than daily with a half-hour random delay would overtake each other.
  const frequent = flags['on-calendar'] !== undefined && (periodHoursOf(onCalendar) ?? 24) < 24;
  const randomizedDelay = flags['randomized-delay'] ?? (frequent ? FREQUENT_RANDOMIZED_DELAY : DEFAULT_RANDOMIZED_DELAY);
  if (!SPAN.test(randomizedDelay.trim())) throw new UserError('config', `--randomized-delay '${randomizedDelay}' is not a time span; e.g. --randomized-delay 30min (0 for none)`);
  const timeoutStart = flags.timeout ?? DEFAULT_TIMEOUT_START;
  if (!SPAN.test(timeoutStart.trim())) throw new UserError('config', `--timeout '${timeoutStart}' is not a time span; e.g. --timeout 12h`);
  const role = flags.role;
  if (role !== undefined && role !== 'primary' && role !== 'standby') throw new UserError('config', `--role '${role}' must be primary (this host is backed up) or standby (this host mirrors the backups), e.g. --role standby`);
  const acceptHostKey = flags['accept-host-key'];
  if (acceptHostKey !== undefined && !FINGERPRINT.test(acceptHostKey)) {
    throw new UserError('config', `--accept-host-key '${acceptHostKey}' is not a fingerprint; give it as the installer showed it, e.g. --accept-host-key SHA256:XqONwb1S0zuj5A1CDxpOSuD2hnAArV1A3wKY7Z3sdgM`);
  }

  const given: Record<string, string> = {};
  const givenFrom: Record<string, string> = {};
  const put = (key: string, value: string, from: string) => {
    if (/[\n\r\0]/.test(value)) throw new UserError('config', `${from}: the value of ${key} must be one line`);
    given[key] = value;
    givenFrom[key] = from;
  };
  let envFile: string | undefined;
  const warnings: string[] = [];
  if (flags['env-file'] !== undefined) {
    envFile = resolve(flags['env-file']);
    let text: string;
    try {
      text = readFileSync(envFile, 'utf8');
    } catch (e) {
      throw new UserError('config', `--env-file ${envFile} cannot be read (${(e as NodeJS.ErrnoException).code}); give the path of an existing .env`);
    }
    const raw = parse(text);
    warnings.push(...unknownKeyWarnings(raw, envFile));
    for (const [k, v] of Object.entries(raw)) if (KNOWN_KEYS.has(k) && v.trim() !== '') put(k, v, envFile);
  }
  for (const k of KNOWN_KEYS) {
    const v = env[`MCB_${k}`];
    if (v !== undefined && v.trim() !== '') put(k, v, `environment MCB_${k}`);
  }
  for (const raw of flags.set ?? []) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/s.exec(raw);
    if (!m) throw new UserError('config', `--set '${raw}' must look like KEY=VALUE, e.g. --set BWLIMIT_KBPS=10000`);
    if (!KNOWN_KEYS.has(m[1]!)) throw new UserError('config', `--set ${m[1]}: unknown key; the keys are listed in .env.example`);
    put(m[1]!, m[2]!, `--set ${m[1]}`);
  }
  for (const [flag, key] of Object.entries(VALUE_FLAGS)) {
    const v = flags[flag as keyof typeof VALUE_FLAGS];
    if (v !== undefined) put(key, v, `--${flag}`);
  }
  if (flags.email !== undefined && given.EMAIL_NOTIFICATIONS === undefined) put('EMAIL_NOTIFICATIONS', 'true', '--email');
  if (role !== undefined) put('ROLE', role, '--role');
  for (const [k, v] of Object.entries(scheduleDefaults(onCalendar, flags['dump-interval']))) {
    const byFlag = k === 'DUMP_INTERVAL_HOURS' && flags['dump-interval'] !== undefined;
    if (byFlag || given[k] === undefined) put(k, v, byFlag ? '--dump-interval' : `--on-calendar ${onCalendar.trim()}`);
  }

  const root = flags.root !== undefined ? absolute('--root', resolve(flags.root)) : '/';
  return {
    uninstall: Boolean(flags.uninstall),
    purge: Boolean(flags.purge),
    yes: Boolean(flags.yes),
    dryRun: Boolean(flags['dry-run']),
    root,
    installDir: flags['install-dir'] !== undefined ? absolute('--install-dir', flags['install-dir']) : DEFAULTS.installDir,
    configPath: flags.config !== undefined ? absolute('--config', flags.config) : `${DEFAULTS.configDir}/.env`,
    onCalendar: onCalendar.trim(),
    drillCalendar: drillCalendar === 'off' ? undefined : drillCalendar,
    randomizedDelay: randomizedDelay.trim(),
    timeoutStart: timeoutStart.trim(),
    acceptHostKey,
    keygen: !flags['no-keygen'],
    skipNpm: Boolean(flags['skip-npm']) || root !== '/',
    check: flags.check ? true : flags['skip-check'] ? false : undefined,
    firstBackup: Boolean(flags['first-backup']),
    enableTimer: Boolean(flags['enable-timer']),
    role,
    given,
    givenFrom,
    envFile,
    warnings,
    fromFlags: { onCalendar: flags['on-calendar'] !== undefined, randomizedDelay: flags['randomized-delay'] !== undefined || frequent, timeoutStart: flags.timeout !== undefined, installDir: flags['install-dir'] !== undefined, drillCalendar: flags['drill-calendar'] !== undefined },
  };
}
