// The logrotate file, rendered from logrotate/mailcow-backup. Pure.
import { fillTemplate, readTemplate } from './templates.js';

export function renderLogrotate(logFile: string, template: string = readTemplate('logrotate/mailcow-backup')): string {
  if (!logFile.startsWith('/') || /[\s"'\\{}]/.test(logFile)) throw new Error(`LOG_FILE ${JSON.stringify(logFile)} cannot be used in a logrotate file (absolute path without spaces, quotes or braces)`);
  return fillTemplate('logrotate/mailcow-backup', template, { LOG_FILE: logFile });
}
