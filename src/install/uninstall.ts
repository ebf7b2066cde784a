// --uninstall: stops and removes the units, the logrotate file, the command symlinks and the
// program. Config, state, logs and local dumps stay unless --purge is given; backups on the
// Storage Box and the SSH key are never touched.
import { existsSync, readdirSync, readFileSync, readlinkSync, lstatSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import { EXIT } from '../cli/exit-codes.js';
import { parseConfigText } from '../config/load.js';
import { configSchema, type Config } from '../config/schema.js';
import { DEFAULTS, layoutFor, rooted, UNIT_NAMES } from './layout.js';
import { STANDBY_UNIT_NAMES } from './standby-units.js';
import { readManifest, type InstallManifest } from './manifest.js';
import type { InstallOptions } from './options.js';
import { Ops, type Out } from './ops.js';
import { DRILL_UNIT_NAMES } from './drill-units.js';

function configOf(realConfigPath: string, out: Out): Config {
  try {
    return parseConfigText(readFileSync(realConfigPath, 'utf8'), realConfigPath).config;
  } catch {
    if (existsSync(realConfigPath)) out.warn(`${realConfigPath} cannot be read or is not valid: using the default paths for state and logs`);
    return configSchema.parse({ HETZNER_HOST: 'unknown.invalid', HETZNER_USER: 'unknown' });
  }
}

export async function runUninstall(opts: InstallOptions, deps: { exec: Exec; out: Out }): Promise<number> {
  const { exec, out } = deps;
  const ops = new Ops(opts.dryRun, exec, out);
  const R = (p: string) => rooted(opts.root, p);
  const layout = layoutFor(opts.root, opts.installDir, opts.configPath);
  const manifest: InstallManifest | undefined = readManifest(R(layout.configDir));
  const configPath = manifest?.configPath ?? layout.configPath;
  const config = configOf(R(configPath), out);
  const data = manifest?.data ?? { stateDir: config.STATE_DIR, tempDir: config.TEMP_BACKUP_DIR, logFile: config.LOG_FILE, statusFile: config.STATUS_FILE };
  const installDir = manifest?.installDir ?? layout.installDir;
  if (opts.dryRun) out.info('dry run: nothing is removed');

  out.step('systemd');
  if (opts.root === '/') {
    await ops.run('systemctl', ['disable', '--now', UNIT_NAMES.timer, STANDBY_UNIT_NAMES.timer, DRILL_UNIT_NAMES.timer], { what: 'systemctl disable --now', okCodes: [0, 1, 5] });
    await ops.run('systemctl', ['stop', UNIT_NAMES.service, DRILL_UNIT_NAMES.service], { what: 'systemctl stop', okCodes: [0, 1, 5] });
  } else out.info(`skipped under --root: systemctl disable --now ${UNIT_NAMES.timer}`);
  const units = manifest?.units ?? Object.values(UNIT_NAMES).map((n) => join(DEFAULTS.unitDir, n));
  for (const u of units) if (await ops.remove(R(u))) out.ok(`removed ${R(u)}`);
  if (await ops.remove(R(manifest?.logrotateFile ?? layout.logrotateFile))) out.ok(`removed ${R(manifest?.logrotateFile ?? layout.logrotateFile)}`);
  if (opts.root === '/') {
    await ops.run('systemctl', ['daemon-reload'], { what: 'systemctl daemon-reload' });
    await ops.run('systemctl', ['reset-failed', UNIT_NAMES.service], { what: 'systemctl reset-failed', okCodes: [0, 1, 5] });
  }
  await ops.remove(R(manifest?.motdFile ?? layout.motdFile));

  out.step('Program');
  const links = manifest?.links ?? [join(layout.binDir, 'backup-to-hetzner'), join(layout.binDir, 'restore-from-hetzner')];
  for (const l of links) {
    const real = R(l);
    let st;
    try {
      st = lstatSync(real);
    } catch {
      continue;
    }
    if (!st.isSymbolicLink() || !readlinkSync(real).startsWith(installDir + '/')) {
      out.warn(`${real} is not our symlink: left alone`);
      continue;
    }
    await ops.remove(real);
    out.ok(`removed ${real}`);
  }
  for (const d of [R(installDir), `${R(installDir)}.new`, `${R(installDir)}.old`]) if (await ops.remove(d)) out.ok(`removed ${d}`);

  const kept = [dirname(configPath), data.stateDir, data.tempDir, data.logFile];
  out.step(opts.purge ? 'Purge' : 'Kept');
  if (opts.purge) {
    const logDir = dirname(data.logFile);
    const rotated = existsSync(R(logDir)) ? readdirSync(R(logDir)).filter((n) => n.startsWith(basename(data.logFile) + '.')).map((n) => join(logDir, n)) : [];
    for (const p of [dirname(configPath), data.stateDir, data.tempDir, data.statusFile, data.logFile, ...rotated]) {
      if (await ops.remove(R(p))) out.ok(`removed ${R(p)}`);
    }
  } else {
    for (const p of kept) if (existsSync(R(p))) out.info(`kept ${R(p)}${p === data.tempDir ? ' (local dumps)' : ''}`);
    out.info('remove them too with: --uninstall --purge');
  }
  out.info(`never touched: the backups on the Storage Box, and the SSH key ${config.SSH_KEY_PATH}`);

  // Folders the install created and that are empty now (deepest first); kept data folders stay.
  const keep = new Set(opts.purge ? [] : [dirname(configPath), data.stateDir, data.tempDir, dirname(data.logFile), dirname(data.statusFile)]);
  const created = [...(manifest?.createdDirs ?? [])].sort((a, b) => b.length - a.length);
  for (const d of created) {
    if (keep.has(d) || [...keep].some((k) => k.startsWith(d + '/') && existsSync(R(k)))) continue;
    if (opts.dryRun) continue;
    await rmdir(R(d)).catch(() => undefined);
  }
  out.step('Done');
  out.ok(opts.dryRun ? 'dry run: nothing was removed' : `uninstalled${opts.purge ? ' and purged' : ''}`);
  return EXIT.ok;
}
