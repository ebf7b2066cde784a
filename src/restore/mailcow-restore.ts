// Drives mailcow's backup_and_restore.sh restore for one archive component: reads the menus it
// prints and answers by label (menu.ts), offers it only the downloaded restore point, and judges
// the outcome from its output, because its exit status is not reliable.
import { join } from 'node:path';
import { runInteractive } from '../adapters/interactive.js';
import { SCRIPT } from '../adapters/mailcow.js';
import type { Logger } from '../adapters/logger.js';
import type { Component } from '../config/schema.js';
import { UserError } from '../errors.js';
import { followUpAnswers, menuKind, parseMenuLine, pickDataset, pickRestorePoint, stripAnsi, type MenuItem } from './menu.js';

export interface MailcowRestoreOptions {
  mailcowPath: string;
  /** MAILCOW_BACKUP_LOCATION: a folder holding only `folder`. */
  location: string;
  /** The backup folder inside location (absolute). */
  folder: string;
  component: Component;
  threads: number;
  timeoutMs?: number;
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Run the script in its own process group: a Ctrl-C lets it finish this component. */
  ownProcessGroup?: boolean;
  env?: Record<string, string | undefined>;
  /** Shortened progress for the screen. */
  onProgress?: (line: string) => void;
}

export interface MailcowRestoreResult {
  component: Component;
  outcome: 'restored' | 'skipped';
  notes: string[];
  lines: number;
}

const ERROR_LINES = [/Cannot open: No such file/i, /Error response from daemon/i, /No such file or directory/i, /Could not find the corresponding mailcow\.conf/i, /Could not determine SQL image/i, /Can not read DOCKER_COMPOSE_VERSION/i, /Cannot find docker/i, /tar: .*(Error|Unexpected EOF)/i];
// "OK, skipped." also follows the declined resync question after vmail: only a skip for mysql.
const SKIP_LINES = [/Skipping rspamd/i, /Could not determine SQL image version, skipping/i];

export async function runMailcowRestore(log: Logger, o: MailcowRestoreOptions): Promise<MailcowRestoreResult> {
  let items: MenuItem[] = [];
  let refusal: string | undefined;
  let chosen: string | undefined;
  let started = false;
  let lines = 0;
  const errors: string[] = [];
  const notes: string[] = [];
  const res = await runInteractive('bash', [join(o.mailcowPath, SCRIPT), 'restore'], {
    what: `mailcow's restore script (${o.component})`,
    cwd: join(o.mailcowPath, 'helper-scripts'),
    env: { ...o.env, MAILCOW_BACKUP_LOCATION: o.location, THREADS: String(o.threads) },
    timeoutMs: o.timeoutMs,
    idleTimeoutMs: o.idleTimeoutMs ?? 120_000,
    signal: o.signal,
    ownProcessGroup: o.ownProcessGroup,
    onLine: (raw, stream, io) => {
      lines++;
      const line = stripAnsi(raw);
      if (!/^\.?\//.test(line) || !started) log.debug(`mailcow: ${line}`);
      const item = parseMenuLine(line);
      if (item) {
        items.push(item);
        return;
      }
      if (items.length) {
        // The line after a menu block: answer it.
        const menu = items;
        items = [];
        if (menuKind(menu) === 'restore-point') {
          const p = pickRestorePoint(menu, o.folder);
          if (!p.ok) {
            refusal = p.reason;
            io.kill();
            return;
          }
          io.write(`${p.number}\n`);
        } else {
          const p = pickDataset(menu, o.component);
          if (!p.ok) {
            refusal = p.reason;
            io.kill();
            return;
          }
          chosen = p.label;
          log.info(`mailcow's menu: choosing [ ${p.number} ] ${p.label} for ${o.component}`);
          io.write([String(p.number), ...followUpAnswers(o.component)].join('\n') + '\n');
          io.end(); // any question the contract does not know gets end of input
        }
      }
      if (/^Restoring /.test(line)) {
        started = true;
        o.onProgress?.(line.trim());
      }
      if (/^(Stopping|Starting|Modifying)/.test(line)) o.onProgress?.(line.trim());
      if (ERROR_LINES.some((re) => re.test(line))) errors.push(line);
      if (SKIP_LINES.some((re) => re.test(line)) || (o.component === 'mysql' && /OK, skipped\./.test(line))) notes.push(line.trim());
      if (stream === 'stderr' && line.trim()) log.warn(`mailcow: ${line}`);
    },
  });
  if (refusal) throw new UserError('failed', `${o.component}: ${refusal}; nothing of ${o.component} was restored`);
  if (!chosen) throw new UserError('failed', `${o.component}: mailcow's restore script ended (exit ${res.exitCode}) before it offered its dataset menu`, res.tail);
  if (errors.length) throw new UserError('failed', `${o.component}: mailcow's restore script reported an error: ${errors[0]}`, [...errors.slice(0, 10), ...res.tail.slice(-10)]);
  if (res.exitCode !== 0) throw new UserError('failed', `${o.component}: mailcow's restore script failed (exit ${res.exitCode})`, res.tail);
  return { component: o.component, outcome: notes.length ? 'skipped' : 'restored', notes, lines };
}
