// Pure: may the installed service write every path the config names? The unit's ReadWritePaths=
// is written by the installer from the config of that day; under ProtectSystem=strict a path
// changed in .env later (PROMETHEUS_TEXTFILE, say) is read-only for the timer's runs, whatever a
// run started by hand manages. The run and `check` compare the two and name the installer command
// that rewrites the unit.
import { dirname } from 'node:path';
import type { Config } from '../config/schema.js';

export interface WritablePath {
  key: 'TEMP_BACKUP_DIR' | 'STATE_DIR' | 'LOG_FILE' | 'STATUS_FILE' | 'PROMETHEUS_TEXTFILE';
  /** The configured value. */
  value: string;
  /** What the unit must allow: the folder, or the log file itself. */
  path: string;
  /** 'run': without it the run fails; 'report': the status or metrics file goes stale. */
  neededBy: 'run' | 'report';
}

export type WritableConfig = Pick<Config, 'TEMP_BACKUP_DIR' | 'STATE_DIR' | 'LOG_FILE' | 'STATUS_FILE' | 'PROMETHEUS_TEXTFILE'>;

export function writablePaths(c: WritableConfig): WritablePath[] {
  const out: WritablePath[] = [
    { key: 'TEMP_BACKUP_DIR', value: c.TEMP_BACKUP_DIR, path: c.TEMP_BACKUP_DIR, neededBy: 'run' },
    { key: 'STATE_DIR', value: c.STATE_DIR, path: c.STATE_DIR, neededBy: 'run' },
    { key: 'LOG_FILE', value: c.LOG_FILE, path: c.LOG_FILE, neededBy: 'run' },
    { key: 'STATUS_FILE', value: c.STATUS_FILE, path: dirname(c.STATUS_FILE), neededBy: 'report' },
  ];
  if (c.PROMETHEUS_TEXTFILE) out.push({ key: 'PROMETHEUS_TEXTFILE', value: c.PROMETHEUS_TEXTFILE, path: dirname(c.PROMETHEUS_TEXTFILE), neededBy: 'report' });
  return out;
}

const assignments = (texts: string[], key: string) => texts.flatMap((t) => [...t.matchAll(new RegExp(`^[ \\t]*${key}[ \\t]*=(.*)$`, 'gm'))].map((m) => m[1]!.trim()));

/**
 * The paths a unit (its file, then its drop-ins in order) lets the service write, or undefined
 * when it is not ProtectSystem=strict (then this comparison cannot tell). An empty assignment
 * resets the list, as systemd does. /tmp and /var/tmp do not count: PrivateTmp= makes them the
 * service's own, where docker's dump and the admin's monitoring never look; BindPaths= does.
 */
export function unitWritablePaths(texts: string[]): string[] | undefined {
  const protect = assignments(texts, 'ProtectSystem').pop();
  if (protect !== 'strict') return undefined;
  const out: string[] = [];
  for (const key of ['ReadWritePaths', 'BindPaths']) {
    const list: string[] = [];
    for (const v of assignments(texts, key)) {
      if (v === '') list.length = 0;
      for (const tok of v.split(/\s+/).filter(Boolean)) {
        const parts = tok.replace(/^[-+]+/, '').split(':');
        list.push(key === 'BindPaths' ? (parts[1] ?? parts[0]!) : parts[0]!);
      }
    }
    out.push(...list);
  }
  return out;
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');

export function notAllowed(paths: WritablePath[], allowed: string[]): WritablePath[] {
  return paths.filter((p) => !allowed.some((a) => under(p.path, a)));
}

/** The command that rewrites the units, from the service's ExecStart (its node, install folder and config). */
export function installerCommand(serviceText: string, defaultConfig = '/etc/mailcow-backup/.env'): string {
  const exec = /^ExecStart=(\S+) .*?(\S+)\/dist\/src\/cli\/backup-to-hetzner\.js run(?: --config (\S+))?/m.exec(serviceText);
  if (!exec) return 'sudo node dist/install.js --yes (in the folder you installed from)';
  const config = exec[3] && exec[3] !== defaultConfig ? ` --config ${exec[3]}` : '';
  return `sudo ${exec[1]} ${exec[2]}/dist/install.js --yes${config}`;
}

/** One line per path the unit does not allow, naming the key, the unit and the fix. */
export function unitPathLines(missing: WritablePath[], unitPath: string, fix: string): string[] {
  return missing.map(
    (m) =>
      `${m.key}=${m.value}: ${m.path === m.value ? 'it' : `its folder ${m.path}`} is not in ReadWritePaths= of ${unitPath} (written by the installer from the config of that day), so the timer's runs cannot write it (ProtectSystem=strict)${m.neededBy === 'run' ? ' and fail' : ''}; run the installer again: ${fix}`,
  );
}
