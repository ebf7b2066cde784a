// systemd: the schedule checked by systemd-analyze, daemon-reload and enable --now of the timer,
// then `backup-to-hetzner check` and, if wanted, the first backup. Skipped under --root.
import { UserError } from '../errors.js';
import type { Exec } from '../adapters/exec.js';
import { UNIT_NAMES } from './layout.js';
import { STANDBY_UNIT_NAMES } from './standby-units.js';
import { onPath } from './preflight.js';
import type { Ops } from './ops.js';

/** Runs `systemd-analyze calendar SPEC`; returns its normalized form and next elapse. */
export async function checkCalendar(exec: Exec, spec: string, requireTool: boolean): Promise<{ normalized?: string; next?: string } | undefined> {
  if (!onPath('systemd-analyze')) {
    if (requireTool) throw new UserError('preflight', 'systemd-analyze is missing; it comes with systemd, which the timer needs');
    return undefined;
  }
  const r = await exec('systemd-analyze', ['calendar', spec], { what: 'systemd-analyze calendar', capture: true, okCodes: [0, 1] });
  if (r.exitCode !== 0) {
    const why = r.tail.filter((l) => l.trim()).slice(-1)[0] ?? 'not understood';
    throw new UserError('config', `--on-calendar '${spec}' is not a valid systemd calendar spec (${why.trim()}); e.g. --on-calendar '*-*-* 03:00:00'`);
  }
  const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(.+)$`, 'm').exec(r.stdout)?.[1]?.trim();
  return { normalized: field('Normalized form'), next: field('Next elapse') };
}

export async function enableTimer(ops: Ops, timer: string = UNIT_NAMES.timer): Promise<void> {
  await ops.run('systemctl', ['daemon-reload'], { what: 'systemctl daemon-reload' });
  await ops.run('systemctl', ['enable', '--now', timer], { what: `systemctl enable --now ${timer}`, onLine: (l) => ops.out.info(l) });
  if (!ops.dryRun) {
    const r = await ops.probe('systemctl', ['list-timers', '--no-pager', timer], { what: 'systemctl list-timers', capture: true, okCodes: [0, 1] });
    for (const l of r.stdout.split('\n').filter((x) => x.trim()).slice(0, 2)) ops.out.info(l);
  }
  ops.out.ok(`${ops.dryRun ? 'would enable' : 'enabled and started'} ${timer}`);
}

/** `backup-to-hetzner check` with the installed program; true when nothing failed. */
/** `unitDir`: where the units were just written (below --root too), for the check's unit-path comparison. */
export async function runCheck(exec: Exec, ops: Ops, nodePath: string, cliPath: string, configPath: string, unitDir: string): Promise<boolean> {
  if (ops.dryRun) {
    ops.out.info(`would run: ${nodePath} ${cliPath} check --config ${configPath}`);
    return true;
  }
  const r = await exec(nodePath, [cliPath, 'check', '--config', configPath], {
    what: 'backup-to-hetzner check',
    onLine: (l) => ops.out.info(l),
    okCodes: [0, 1, 2, 4, 70],
    timeoutMs: 5 * 60_000,
    env: { MAILCOW_BACKUP_CONFIG: configPath, MAILCOW_BACKUP_UNIT_DIR: unitDir },
  });
  return r.exitCode === 0;
}

export async function startFirstBackup(ops: Ops): Promise<void> {
  await ops.run('systemctl', ['start', '--no-block', UNIT_NAMES.service], { what: `systemctl start ${UNIT_NAMES.service}` });
  ops.out.ok(`first backup started in the background; follow it with: journalctl -fu ${UNIT_NAMES.service}`);
}

/** The standby's timer, and its first mirror at once (in the background: the first fetches everything). */
export async function enableStandby(ops: Ops): Promise<void> {
  const { service, timer } = STANDBY_UNIT_NAMES;
  await ops.run('systemctl', ['daemon-reload'], { what: 'systemctl daemon-reload' });
  await ops.run('systemctl', ['enable', '--now', timer], { what: `systemctl enable --now ${timer}`, onLine: (l) => ops.out.info(l) });
  await ops.run('systemctl', ['start', '--no-block', service], { what: `systemctl start ${service}` });
  ops.out.ok(`${ops.dryRun ? 'would enable' : 'enabled and started'} ${timer}; the first mirror runs now in the background: journalctl -fu ${service}`);
}
