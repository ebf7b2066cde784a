// The installer, step by step: preflight, config, SSH, program, units and logrotate, systemd,
// check. Each step prints what it did (or, with --dry-run, what it would do). Returns the exit code.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import { EXIT } from '../cli/exit-codes.js';
import { KEY_DOCS } from '../config/schema.js';
import { TOOL_VERSION } from '../version.js';
import { ensureConfig } from './config-file.js';
import { layoutFor, rooted, UNIT_NAMES, type Layout } from './layout.js';
import { renderLogrotate } from './logrotate.js';
import { MANIFEST_NAME, readManifest, renderManifest, type InstallManifest } from './manifest.js';
import type { InstallOptions } from './options.js';
import { Ops, type Out } from './ops.js';
import { checkBasics, checkMailcow, checkTools, isMailcowFolder, mailcowCandidates } from './preflight.js';
import { binsOf, installProgram, linkCommands } from './program.js';
import type { Asker } from './prompts.js';
import { freshHostVerdict } from './fresh-host.js';
import { ensureKey, offerKeyUpload, pinBoxHostKey } from './ssh-setup.js';
import { checkCalendar, enableStandby, enableTimer, runCheck, startFirstBackup } from './systemctl.js';
import { installedSettings, settleInstallDir, settleSettings } from './installed-units.js';
import { renderUnits } from './units.js';
import { DEFAULT_STANDBY_ON_CALENDAR, DEFAULT_STANDBY_RANDOMIZED_DELAY, renderStandbyUnits, STANDBY_UNIT_NAMES } from './standby-units.js';
import { UserError } from '../errors.js';
import { DRILL_UNIT_NAMES, renderDrillUnits } from './drill-units.js';

export interface InstallDeps {
  exec: Exec;
  asker: Asker;
  out: Out;
  packageRoot: string;
  /** Absolute path of the node that runs the service (default: the one running the installer). */
  nodePath?: string;
  /** For tests: pretend to be root / another PATH. */
  euid?: number;
  pathEnv?: string;
  /** For tests: Hetzner's published host-key fingerprints (default: the real ones). */
  publishedFingerprints?: readonly string[];
}

/** Host path of a real path below --root. */
export function unrooted(root: string, real: string): string {
  if (root === '/' || !real.startsWith(root + '/')) return real;
  return real.slice(root.length);
}

export async function runInstall(given: InstallOptions, deps: InstallDeps): Promise<number> {
  const { exec, asker, out } = deps;
  const nodePath = deps.nodePath ?? process.execPath;
  const previous = readManifest(rooted(given.root, layoutFor(given.root, given.installDir, given.configPath).configDir));
  const dir = settleInstallDir(given, previous?.installDir);
  const layout: Layout = layoutFor(given.root, dir.installDir, given.configPath);
  const settled = settleSettings(given, installedSettings(rooted(given.root, layout.unitDir)));
  const opts: InstallOptions = { ...given, ...settled.values, installDir: dir.installDir };
  if (dir.line) settled.lines.push({ warn: false, text: dir.line });
  if (!given.fromFlags.drillCalendar && previous?.drillCalendar !== undefined) {
    opts.drillCalendar = previous.drillCalendar === 'off' ? undefined : previous.drillCalendar;
    settled.lines.push({ warn: false, text: `restore drill schedule '${previous.drillCalendar}' kept from the last install (--drill-calendar changes it)` });
  }
  if (opts.role === 'standby') standbySchedule(opts);
  const secretKeys = KEY_DOCS.filter((d) => d.secret).map((d) => d.key);
  const ops = new Ops(opts.dryRun, exec, out, secretKeys);
  const R = (p: string) => rooted(opts.root, p);
  if (opts.dryRun) out.info('dry run: nothing is written, no command that changes anything is run');
  if (opts.root !== '/') out.info(`installing below ${opts.root} (no systemctl${opts.check ? '' : ', no check'})`);

  out.step('Preflight');
  for (const w of opts.warnings) out.warn(w);
  for (const l of settled.lines) (l.warn ? out.warn : out.ok)(l.text);
  await checkBasics({ root: opts.root, dryRun: opts.dryRun, euid: deps.euid, pathEnv: deps.pathEnv }, out);
  await checkTools({ root: opts.root, dryRun: opts.dryRun, pathEnv: deps.pathEnv }, asker, exec, out);
  const cal = await checkCalendar(exec, opts.onCalendar, opts.root === '/');
  out.ok(`schedule '${opts.onCalendar}'${cal?.next ? `: next ${cal.next} (plus up to ${opts.randomizedDelay})` : cal ? '' : ' (systemd-analyze not found: not checked)'}`);
  const candidates = await mailcowCandidates(exec, opts.root);
  if (candidates.length) out.ok(`mailcow found: ${candidates.join(', ')}`);
  else out.info('mailcow not found in /opt/mailcow-dockerized or among running compose projects');

  out.step(`Config ${R(layout.configPath)}`);
  const { config } = await ensureConfig(opts, asker, ops, {
    suggestions: candidates[0] ? { MAILCOW_PATH: candidates[0] } : {},
    extraChecks: asker.interactive ? { MAILCOW_PATH: (v) => (isMailcowFolder(R(v)) ? true : 'is not a mailcow-dockerized folder (no mailcow.conf and helper-scripts/backup_and_restore.sh)') } : {},
    verify: (c) => checkMailcow(opts.root, c.MAILCOW_PATH),
  });
  out.ok(`mailcow ${config.MAILCOW_PATH}; box ${config.HETZNER_USER}@${config.HETZNER_HOST}:${config.HETZNER_PORT}, folder ${config.HETZNER_REMOTE_PATH}`);
  // An existing config is never changed: the role it names and the role asked for must agree.
  if (opts.role && opts.role !== config.ROLE) throw new UserError('config', `--role ${opts.role}, but ${layout.configPath} says ROLE=${config.ROLE}; the installer never changes an existing config: set ROLE=${opts.role} in it, then run the installer again`);
  const standby = config.ROLE === 'standby';
  if (standby) out.ok(`role: standby (mirrors the newest backup into ${config.STANDBY_DIR}; no backup timer)`);

  out.step('SSH');
  const key = await ensureKey(opts, config, asker, ops);
  await pinBoxHostKey(opts, config, asker, ops, exec, deps.publishedFingerprints);
  if (key.present || key.generated) await offerKeyUpload(opts, config, asker, ops, exec, key.generated);

  out.step(`Program ${R(layout.installDir)}`);
  const programParams = { packageRoot: deps.packageRoot, layout, nodePath, skipNpm: opts.skipNpm };
  await installProgram(programParams, ops);
  const links = await linkCommands(programParams, ops);

  out.step('Folders, units and logrotate');
  await ops.mkdir(R(config.STATE_DIR), 0o700);
  await ops.mkdir(R(config.TEMP_BACKUP_DIR), 0o700);
  await ops.ensureDir(R(dirname(config.STATUS_FILE)), 0o700);
  await ops.ensureDir(R(dirname(config.LOG_FILE)), 0o755);
  if (!existsSync(R(config.LOG_FILE))) await ops.writeFile(R(config.LOG_FILE), '', 0o600);
  out.ok(`state ${config.STATE_DIR} (0700), temp ${config.TEMP_BACKUP_DIR} (0700), log ${config.LOG_FILE} (0600)`);
  if (standby) {
    standbySchedule(opts);
    await ops.mkdir(R(config.STANDBY_DIR), 0o700);
  }
  const unitParams = {
    nodePath,
    installDir: layout.installDir,
    configPath: layout.configPath,
    onCalendar: opts.onCalendar,
    randomizedDelay: opts.randomizedDelay,
    timeoutStart: opts.timeoutStart,
    motdFile: layout.motdFile,
    config,
  };
  const units = renderUnits(unitParams);
  const standbyUnits = standby ? renderStandbyUnits(unitParams, deps.packageRoot) : undefined;
  const unitFiles: [string, string][] = standbyUnits
    ? [
        [STANDBY_UNIT_NAMES.service, standbyUnits.service],
        [STANDBY_UNIT_NAMES.timer, standbyUnits.timer],
        [UNIT_NAMES.failure, units.failure],
      ]
    : [
        [UNIT_NAMES.service, units.service],
        [UNIT_NAMES.timer, units.timer],
        [UNIT_NAMES.failure, units.failure],
      ];
  // A host changing roles keeps no timer of the other role: a standby must never back up.
  const otherRole = standby ? [UNIT_NAMES.timer, UNIT_NAMES.service] : [STANDBY_UNIT_NAMES.timer, STANDBY_UNIT_NAMES.service];
  for (const name of otherRole) {
    const path = join(R(layout.unitDir), name);
    if (!existsSync(path)) continue;
    if (opts.root === '/' && name.endsWith('.timer')) await ops.run('systemctl', ['disable', '--now', name], { what: `systemctl disable --now ${name}`, okCodes: [0, 1, 5] });
    if (await ops.remove(path)) out.ok(`removed ${path} (${standby ? 'a standby does not back up' : 'this host is the primary now'})`);
  }
  if (opts.drillCalendar) {
    const drill = renderDrillUnits(units.service, opts.drillCalendar, deps.packageRoot);
    unitFiles.push([DRILL_UNIT_NAMES.service, drill.service], [DRILL_UNIT_NAMES.timer, drill.timer]);
  }
  for (const [name, text] of unitFiles) {
    const path = join(R(layout.unitDir), name);
    const r = await ops.writeFile(path, text, 0o644);
    out.ok(`${path} (${r})`);
  }
  const lr = await ops.writeFile(R(layout.logrotateFile), renderLogrotate(config.LOG_FILE), 0o644);
  out.ok(`${R(layout.logrotateFile)} (${lr})`);

  const manifest: InstallManifest = {
    version: TOOL_VERSION,
    configPath: layout.configPath,
    installDir: layout.installDir,
    units: unitFiles.map(([n]) => join(layout.unitDir, n)),
    drillCalendar: opts.drillCalendar ?? 'off',
    logrotateFile: layout.logrotateFile,
    links: links.map((l) => unrooted(opts.root, l)),
    motdFile: layout.motdFile,
    data: { stateDir: config.STATE_DIR, tempDir: config.TEMP_BACKUP_DIR, logFile: config.LOG_FILE, statusFile: config.STATUS_FILE },
    createdDirs: [...new Set([...(previous?.createdDirs ?? []), ...ops.createdDirs.map((d) => unrooted(opts.root, d))])].filter(
      (d) => !d.startsWith(layout.installDir + '.') && d !== layout.installDir && !d.startsWith(layout.installDir + '/'),
    ),
  };
  if (!opts.dryRun) await ops.writeFile(join(R(layout.configDir), MANIFEST_NAME), renderManifest(manifest), 0o600);

  out.step('systemd');
  // A standby host installed before its restore must not back its empty mailcow up over the good backups.
  // `check` judges a host that backs up (dump space, the backup unit): not a standby's job.
  const shouldCheck = standby ? false : (opts.check ?? opts.root === '/');
  let holdTimer: string | undefined;
  if (!standby && !opts.dryRun && !opts.enableTimer && (opts.root === '/' || shouldCheck)) {
    const v = await freshHostVerdict(config, opts.root, exec);
    if (v.holdTimer) out.warn((holdTimer = v.holdTimer));
    else out.info(v.note);
  }
  if (standby) {
    if (opts.root !== '/') out.info(`skipped under --root: systemctl daemon-reload; systemctl enable --now ${STANDBY_UNIT_NAMES.timer}; systemctl start --no-block ${STANDBY_UNIT_NAMES.service}`);
    else await enableStandby(ops);
  } else if (opts.root !== '/') out.info(`skipped under --root: systemctl daemon-reload${holdTimer ? '' : `; systemctl enable --now ${UNIT_NAMES.timer}`}`);
  else if (holdTimer) await ops.run('systemctl', ['daemon-reload'], { what: 'systemctl daemon-reload' });
  else await enableTimer(ops);
  // The drill never touches the live mailcow: it may run before a fresh host's restore too.
  if (opts.drillCalendar && opts.root === '/') await enableTimer(ops, DRILL_UNIT_NAMES.timer);
  else if (opts.drillCalendar) out.info(`skipped under --root: systemctl enable --now ${DRILL_UNIT_NAMES.timer}`);

  let checked: boolean | undefined;
  if (shouldCheck) {
    out.step('backup-to-hetzner check');
    const cli = binsOf(deps.packageRoot)['backup-to-hetzner'] ?? 'dist/src/cli/backup-to-hetzner.js';
    checked = await runCheck(exec, ops, nodePath, join(R(layout.installDir), cli), R(layout.configPath), R(layout.unitDir));
  }

  if (!standby && checked && opts.root === '/' && !opts.dryRun && !holdTimer) {
    const go = opts.firstBackup || (asker.interactive && (await asker.confirm({ name: 'firstBackup', message: 'Start the first backup now (in the background)?', default: false })));
    if (go) await startFirstBackup(ops);
  }

  out.step('Done');
  if (opts.dryRun) {
    out.info('dry run: nothing was changed');
    return EXIT.ok;
  }
  if (checked === false) {
    out.warn(`installed, but tonight's backup would fail: fix the FAIL lines above, then run: backup-to-hetzner check --config ${layout.configPath}`);
    return EXIT.preflight;
  }
  if (standby) {
    out.ok(`installed mailcow cold standby ${TOOL_VERSION} as a standby; ${STANDBY_UNIT_NAMES.timer} mirrors the newest backup '${opts.onCalendar}'`);
    out.info(`config: ${layout.configPath}   mirror: ${config.STANDBY_DIR}   journal: journalctl -u ${STANDBY_UNIT_NAMES.service}`);
    out.info(`the mirror and its lag: restore-from-hetzner status   failover: restore-from-hetzner --backup latest --components all --yes`);
    return EXIT.ok;
  }
  if (holdTimer) out.warn(`installed mailcow cold standby ${TOOL_VERSION}, but ${UNIT_NAMES.timer} is not enabled: restore first (sudo restore-from-hetzner), then: systemctl enable --now ${UNIT_NAMES.timer}`);
  else out.ok(`installed mailcow cold standby ${TOOL_VERSION}; the timer runs '${opts.onCalendar}'${shouldCheck ? ' and the check passed' : ''}`);
  out.info(`config: ${layout.configPath}   log: ${config.LOG_FILE}   journal: journalctl -u ${UNIT_NAMES.service}`);
  out.info(`run now: systemctl start ${UNIT_NAMES.service}   list backups: backup-to-hetzner list`);
  return EXIT.ok;
}

/** A standby's schedule is its own: hourly unless --on-calendar (and --randomized-delay) say otherwise. */
function standbySchedule(opts: InstallOptions): void {
  if (!opts.fromFlags.onCalendar) opts.onCalendar = DEFAULT_STANDBY_ON_CALENDAR;
  if (!opts.fromFlags.randomizedDelay) opts.randomizedDelay = DEFAULT_STANDBY_RANDOMIZED_DELAY;
}
