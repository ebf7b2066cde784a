// A path changed in .env after the install (the README tells people to set PROMETHEUS_TEXTFILE
// there) is read-only for the timer's runs under ProtectSystem=strict: the installed unit's
// ReadWritePaths= was written from the config of that day. `check` and the run compare the two on
// the sandbox (real sshd, real rsync), with the unit the installer renders, and name the fix.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { renderUnits } from '../src/install/units.js';
import { installerCommand, notAllowed, unitWritablePaths, writablePaths } from '../src/plan/unit-paths.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { BACKUP_CLI, backup } from './support/cli.js';

describe('the installed unit against the configured paths', { timeout: 240_000 }, () => {
  let dir: string;
  let sb: Sandbox;
  let unitDir: string;
  let env: Record<string, string>;
  let installedConfig: string;
  const NODE = '/usr/bin/node';

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'unit-paths-'));
    sb = await createSandbox({ dir, mailBytes: 512 * 1024, seed: 3 });
    // The unit as the installer wrote it from today's config.
    unitDir = path.join(dir, 'systemd');
    await fsp.mkdir(unitDir);
    const { config } = parseConfigText(await fsp.readFile(sb.configPath, 'utf8'), sb.configPath);
    const units = renderUnits({ nodePath: NODE, installDir: '/opt/mailcow-cold-standby', configPath: sb.configPath, onCalendar: 'daily', randomizedDelay: '0', timeoutStart: '1h', motdFile: '/run/motd.d/mailcow-backup-failed', config });
    await fsp.writeFile(path.join(unitDir, 'mailcow-backup.service'), units.service);
    env = { ...sb.env, MAILCOW_BACKUP_UNIT_DIR: unitDir, INVOCATION_ID: '' };
    installedConfig = await fsp.readFile(sb.configPath, 'utf8');
  });
  after(async () => {
    await sb?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  // Each test changes a path in .env its own way: the next one starts from the .env the unit was written from.
  afterEach(() => fsp.writeFile(sb.configPath, installedConfig));

  const fix = () => `run the installer again: sudo ${NODE} /opt/mailcow-cold-standby/dist/install.js --yes --config ${sb.configPath}`;

  it('check says OK while the unit allows every configured path', async () => {
    const r = await backup(['check', '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^OK +unit paths +.*mailcow-backup\.service lets the timer's runs write every path the config names$/m);
  });

  it('PROMETHEUS_TEXTFILE set in .env later: check warns, the run still backs up and says in its report to run the installer again', async () => {
    const metrics = path.join(dir, 'node-exporter');
    await fsp.mkdir(metrics);
    await fsp.appendFile(sb.configPath, `PROMETHEUS_TEXTFILE=${metrics}/mailcow-backup.prom\n`);
    const c = await backup(['check', '--config', sb.configPath], env);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const line = c.stdout.split('\n').find((l) => /^WARN +unit paths/.test(l));
    assert.ok(line, c.stdout);
    assert.ok(line.includes(`PROMETHEUS_TEXTFILE=${metrics}/mailcow-backup.prom: its folder ${metrics} is not in ReadWritePaths= of ${unitDir}/mailcow-backup.service`), line);
    assert.ok(line.endsWith(fix()), line);

    const r = await backup(['run', '--config', sb.configPath], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const status = JSON.parse(await fsp.readFile(path.join(dir, 'state', 'status.json'), 'utf8')) as { warnings: string[] };
    assert.ok(status.warnings.some((w) => w.includes(`PROMETHEUS_TEXTFILE=${metrics}/mailcow-backup.prom`) && w.endsWith(fix())), status.warnings.join('\n'));
    assert.ok((r.stdout + r.stderr).includes(fix()), 'the log says it too');
  });

  it('TEMP_BACKUP_DIR moved in .env: check FAILs, and the timer\'s run stops before the dump with the fix (exit 4), nothing on the box', async () => {
    const moved = path.join(dir, 'tmp-elsewhere');
    await fsp.writeFile(sb.configPath, (await fsp.readFile(sb.configPath, 'utf8')).replace(/^TEMP_BACKUP_DIR=.*$/m, `TEMP_BACKUP_DIR=${moved}`));
    const c = await backup(['check', '--config', sb.configPath], env);
    assert.notEqual(c.code, 0);
    assert.match(c.stdout, new RegExp(`^FAIL +unit paths +TEMP_BACKUP_DIR=${moved.replace(/[/.]/g, '\\$&')}: it is not in ReadWritePaths=`, 'm'));
    const boxBefore = (await fsp.readdir(path.join(sb.box.root, sb.remotePath))).sort();
    const r = await backup(['run', '--config', sb.configPath], { ...env, INVOCATION_ID: 'f00d' });
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`TEMP_BACKUP_DIR=${moved}: it is not in ReadWritePaths=`) && r.stderr.includes(fix()), r.stderr);
    assert.deepEqual((await fsp.readdir(path.join(sb.box.root, sb.remotePath))).sort(), boxBefore, 'nothing new on the box');
    assert.ok(!existsSync(moved) || (await fsp.readdir(moved)).length === 0, 'no dump was made');
  });

  it('STATE_DIR moved in .env: the timer\'s run, its new state folder read-only as under ProtectSystem=strict, stops at the lock with the fix (exit 4)', async (t) => {
    if (spawnSync('unshare', ['-m', 'true']).status !== 0) return t.skip('needs unshare -m (a private mount namespace) to make a read-only folder as systemd does');
    const moved = path.join(dir, 'state-elsewhere');
    await fsp.mkdir(moved);
    await fsp.writeFile(sb.configPath, (await fsp.readFile(sb.configPath, 'utf8')).replace(/^STATE_DIR=.*$/m, `STATE_DIR=${moved}`));
    // In its own mount namespace, the folder is a read-only file system, as the service sees it.
    const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"', 'sh', moved, process.execPath, BACKUP_CLI, 'run', '--config', sb.configPath], {
      env: { ...process.env, ...env, INVOCATION_ID: 'f00d' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 4, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`STATE_DIR=${moved}: it is not in ReadWritePaths=`) && r.stderr.includes(fix()), r.stderr);
  });
});

describe('unit path parts', () => {
  it('reads ReadWritePaths= and BindPaths= as systemd does: drop-ins add, an empty assignment resets, /tmp is private', () => {
    const unit = '[Service]\nProtectSystem=strict\nReadWritePaths=-/var/tmp/mcb -/var/lib/mcb -/var/log/mcb.log\nBindPaths=/var/tmp/mcb\n';
    assert.deepEqual(unitWritablePaths([unit]), ['/var/tmp/mcb', '/var/lib/mcb', '/var/log/mcb.log', '/var/tmp/mcb']);
    assert.deepEqual(unitWritablePaths([unit, '[Service]\nReadWritePaths=\nReadWritePaths=/srv/x\n']), ['/srv/x', '/var/tmp/mcb']);
    assert.equal(unitWritablePaths([unit, '[Service]\nProtectSystem=full\n']), undefined, 'not strict: cannot tell');
    const paths = writablePaths({ TEMP_BACKUP_DIR: '/var/tmp/other', STATE_DIR: '/var/lib/mcb/sub', LOG_FILE: '/var/log/mcb.log', STATUS_FILE: '/var/lib/mcb/status.json', PROMETHEUS_TEXTFILE: '/tmp/x.prom' });
    assert.deepEqual(notAllowed(paths, unitWritablePaths([unit])!).map((p) => p.key), ['TEMP_BACKUP_DIR', 'PROMETHEUS_TEXTFILE']);
    assert.equal(installerCommand('ExecStart=/usr/bin/node --max-semi-space-size=1 /opt/mcs/dist/src/cli/backup-to-hetzner.js run --config /etc/mailcow-backup/.env\n'), 'sudo /usr/bin/node /opt/mcs/dist/install.js --yes');
  });
});
