// The restore drill's service and timer. The service is the backup service with its own command,
// name and exit codes: the same hardening and the same writable paths (the drill writes only its
// scratch folder in TEMP_BACKUP_DIR, the log, the status and metrics files), since it drives the
// same docker and reads the same config. Pure: text in, text out.
import { fillTemplate, readTemplate } from './templates.js';

export const DRILL_UNIT_NAMES = { service: 'mailcow-backup-drill.service', timer: 'mailcow-backup-drill.timer' } as const;
export const DEFAULT_DRILL_CALENDAR = 'weekly';

/** Replaces one whole line that must exist (a changed template fails here, not on a host). */
function swap(text: string, line: RegExp, by: string): string {
  if (!line.test(text)) throw new Error(`internal: the backup service template has no line ${line}`);
  return text.replace(line, by);
}

export function renderDrillUnits(backupService: string, drillCalendar: string, packageRoot?: string): { service: string; timer: string } {
  let s = backupService;
  s = swap(s, /^# mailcow-backup\.service: .*$/m, '# mailcow-backup-drill.service: the restore drill (restore-from-hetzner drill), derived from mailcow-backup.service.');
  s = swap(s, /^Description=.*$/m, 'Description=mailcow restore drill: the newest backup fetched, opened and checked in a scratch folder');
  s = swap(s, /^OnFailure=.*$/m, '# A drill that fails e-mails and pings /fail itself; no failure hook (the marker is the backup\'s).');
  s = swap(s, /^(ExecStart=.*)\/backup-to-hetzner\.js run (--config .*)$/m, '$1/restore-from-hetzner.js drill $2');
  s = swap(
    s,
    /^# Not failures, so no OnFailure= hook: 75.*\n# 130\/143.*\nSuccessExitStatus=.*$/m,
    '# Not failures of the unit: 6, the backup is NOT restorable, which the drill reports itself (e-mail,\n# healthcheck /fail, status); 130/143, stopped by SIGINT/SIGTERM (systemctl stop, shutdown).\nSuccessExitStatus=6 130 143',
  );
  s = swap(s, /^ExecStopPost=.*$/m, '# (no ExecStopPost=: the failure marker belongs to the backup runs)');
  s = swap(s, /^SyslogIdentifier=.*$/m, 'SyslogIdentifier=mailcow-backup-drill');
  const timer = fillTemplate(DRILL_UNIT_NAMES.timer, readTemplate(`systemd/${DRILL_UNIT_NAMES.timer}`, packageRoot), { DRILL_CALENDAR: drillCalendar });
  return { service: s, timer };
}
