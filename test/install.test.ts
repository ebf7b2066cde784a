// The installer, run for real into temporary roots (--root), against the Storage Box stand-in on
// loopback for the host-key step, and checked with the real systemd-analyze and logrotate.
// The program copy uses --skip-npm (implied by --root): production packages are copied from this
// checkout's node_modules, so the tests stay offline and fast.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'dotenv';
import { startStorageBox, type StorageBox } from '../src/sandbox/storage-box.js';
import { createStandinMailcow } from '../src/sandbox/mailcow-standin.js';
import { generateMaildir } from '../src/sandbox/maildir-fixture.js';
import { createExec } from '../src/adapters/exec.js';
import { HETZNER_FINGERPRINTS } from '../src/adapters/host-key.js';
import { envValue, renderEnv } from '../src/install/config-file.js';
import { resolveOptions } from '../src/install/options.js';
import { scriptedAsker, unattendedAsker } from '../src/install/prompts.js';
import { runInstall } from '../src/install/run.js';
import { findPackageRoot } from '../src/install/layout.js';
import type { Out } from '../src/install/ops.js';
import { renderUnits, tempBindLine, homeBinds } from '../src/install/units.js';
import { configSchema } from '../src/config/schema.js';
import { packageManagerOf, installCommand, checkBasics, MIN_NODE } from '../src/install/preflight.js';

const INSTALL_JS = fileURLToPath(new URL('../install.js', import.meta.url));
const PKG = findPackageRoot();

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const installer = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [INSTALL_JS, ...args], env);

/** Every path below root (node_modules and the mailcow stand-in summarized): type, mode, content hash or link target. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `link ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        walk(p);
      } else out.set(rel, `file ${mode} ${createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)}`);
    }
  };
  walk(root);
  return out;
}

const modeOf = (p: string) => fs.statSync(p).mode & 0o777;

function capture(): Out & { lines: string[] } {
  const lines: string[] = [];
  return { lines, step: (t) => lines.push(`== ${t}`), ok: (l) => lines.push(`ok ${l}`), info: (l) => lines.push(`   ${l}`), warn: (l) => lines.push(`WARN ${l}`) };
}

describe('installer', () => {
  let tmp: string;
  let box: StorageBox;
  let base: string[];

  /** A fresh root with a mailcow stand-in at /opt/mailcow-dockerized and the box's client key as root's key. */
  const vmailOf = new Map<string, string>();
  async function makeRoot(name: string): Promise<string> {
    const root = path.join(tmp, name);
    const mc = await createStandinMailcow(path.join(root, 'opt/mailcow-dockerized'));
    vmailOf.set(root, mc.volume('vmail'));
    fs.mkdirSync(path.join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(box.clientKeyPath, path.join(root, 'root/.ssh/id_ed25519'));
    fs.chmodSync(path.join(root, 'root/.ssh/id_ed25519'), 0o600);
    return root;
  }

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mcb-install-'));
    box = await startStorageBox({ dir: path.join(tmp, 'box') });
    base = ['--yes', '--host', box.host, '--port', String(box.port), '--user', box.user];
  });

  after(async () => {
    await box?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('stops an unattended install on a host key that is not Hetzner\'s, naming the fingerprint and the flag', async () => {
    const root = await makeRoot('refuse');
    const r = await installer(['--root', root, ...base]);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const err = r.stderr.trim().split('\n');
    assert.equal(err.length, 1, r.stderr);
    assert.match(err[0]!, new RegExp(`presents host key ${box.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}.*pass --accept-host-key ${box.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}$`));
    assert.ok(r.stdout.includes(`ssh-ed25519 ${box.hostKeyFingerprint}`), 'the scanned fingerprint is shown');
    assert.ok(!fs.existsSync(path.join(root, 'etc/mailcow-backup/known_hosts')), 'nothing pinned');
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  });

  it('stops with exit 2 and the flag to give when a required value is missing, or a flag is bad', async () => {
    const root = await makeRoot('missing');
    const r = await installer(['--root', root, '--yes', '--user', 'u1']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /HETZNER_HOST has no value and no default; for an unattended install pass --host VALUE/);
    const bad = await installer(['--root', root, ...base, '--on-calendar', 'every full moon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--on-calendar 'every full moon' is not a valid systemd calendar spec/);
    assert.equal((await installer(['--nope'])).code, 2);
    const badVal = await installer(['--root', root, ...base, '--set', 'BWLIMIT_KBPS=lots']);
    assert.equal(badVal.code, 2);
    assert.match(badVal.stderr, /BWLIMIT_KBPS='lots' \(from --set BWLIMIT_KBPS\) must be a whole number/);
    assert.ok(!fs.existsSync(path.join(root, 'etc/mailcow-backup/.env')), 'nothing written');
  });

  it('--dry-run prints every file and command and writes nothing', async () => {
    const root = await makeRoot('dry');
    fs.rmSync(path.join(root, 'root/.ssh'), { recursive: true });
    const before = snapshot(root);
    const r = await installer(['--root', root, ...base, '--dry-run', '--accept-host-key', box.hostKeyFingerprint, '--set', 'SMTP_USER=me', '--set', 'SMTP_PASSWORD=hunter2']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(snapshot(root), before);
    for (const f of ['etc/mailcow-backup/.env', 'etc/mailcow-backup/known_hosts', 'etc/systemd/system/mailcow-backup.service', 'etc/systemd/system/mailcow-backup.timer', 'etc/systemd/system/mailcow-backup-failure@.service', 'etc/logrotate.d/mailcow-backup']) {
      assert.ok(r.stdout.includes(`would write ${path.join(root, f)}`), f);
    }
    assert.match(r.stdout, /would run: ssh-keygen -q -t ed25519/);
    assert.match(r.stdout, /would link .*usr\/local\/bin\/backup-to-hetzner -> \/opt\/mailcow-cold-standby\/dist\/src\/cli\/backup-to-hetzner\.js/);
    assert.ok(!r.stdout.includes('hunter2'), 'secrets are not shown');
    assert.match(r.stdout, /SMTP_PASSWORD=\*\*\* \(hidden\)/);
  });

  describe('a full install into a temporary root', () => {
    let root: string;
    let first: Result;
    let afterFirst: Map<string, string>;
    let pristine: Set<string>;
    const unitDir = () => path.join(root, 'etc/systemd/system');

    before(async () => {
      root = await makeRoot('full');
      pristine = new Set(snapshot(root).keys());
      first = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--email', 'admin@example.com']);
      afterFirst = snapshot(root);
    });

    it('succeeds', () => {
      assert.equal(first.code, 0, first.stdout + first.stderr);
    });

    it('writes the config from .env.example with the answers, 0700/0600', () => {
      const env = path.join(root, 'etc/mailcow-backup/.env');
      assert.equal(modeOf(path.dirname(env)), 0o700);
      assert.equal(modeOf(env), 0o600);
      const values = parse(fs.readFileSync(env, 'utf8'));
      assert.equal(values.HETZNER_HOST, '127.0.0.1');
      assert.equal(values.HETZNER_PORT, String(box.port));
      assert.equal(values.HETZNER_USER, box.user);
      assert.equal(values.NOTIFICATION_EMAIL, 'admin@example.com');
      assert.equal(values.EMAIL_NOTIFICATIONS, 'true');
      assert.equal(values.MAILCOW_PATH, '/opt/mailcow-dockerized');
      assert.match(fs.readFileSync(env, 'utf8'), /^# Storage Box host name\. Required\./m, 'keeps the help comments');
      for (const d of ['var/lib/mailcow-backup', 'var/tmp/mailcow-backup']) assert.equal(modeOf(path.join(root, d)), 0o700, d);
      assert.equal(modeOf(path.join(root, 'var/log/mailcow-backup.log')), 0o600);
    });

    it('pins the scanned host key as [127.0.0.1]:PORT', async () => {
      const known = fs.readFileSync(path.join(root, 'etc/mailcow-backup/known_hosts'), 'utf8');
      assert.match(known, new RegExp(`^\\[127\\.0\\.0\\.1\\]:${box.port} ssh-ed25519 AAAA`, 'm'));
      assert.ok(first.stdout.includes(box.hostKeyFingerprint));
      const fp = await run('ssh-keygen', ['-l', '-f', path.join(root, 'etc/mailcow-backup/known_hosts')]);
      assert.ok(fp.stdout.includes(box.hostKeyFingerprint));
      assert.match(first.stdout, /install-ssh-key < \/root\/\.ssh\/id_ed25519\.pub/);
    });

    it('installs the program with production dependencies only, and links the commands', async () => {
      const dir = path.join(root, 'opt/mailcow-cold-standby');
      const cli = path.join(dir, 'dist/src/cli/backup-to-hetzner.js');
      assert.ok(fs.statSync(cli).mode & 0o100, 'executable');
      assert.ok(fs.existsSync(path.join(dir, 'node_modules/zod/package.json')));
      assert.ok(!fs.existsSync(path.join(dir, 'node_modules/typescript')), 'no dev dependencies');
      assert.ok(!fs.existsSync(path.join(dir, 'dist/test')), 'no tests');
      assert.ok(fs.existsSync(path.join(dir, 'systemd/mailcow-backup.service')), 'templates for a later install/uninstall');
      assert.equal(fs.readlinkSync(path.join(root, 'usr/local/bin/backup-to-hetzner')), '/opt/mailcow-cold-standby/dist/src/cli/backup-to-hetzner.js');
      const v = await run(process.execPath, [cli, '--version']);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /^backup-to-hetzner /);
    });

    it('writes units that systemd-analyze verify accepts', async () => {
      const service = fs.readFileSync(path.join(unitDir(), 'mailcow-backup.service'), 'utf8');
      const exec = new RegExp(`^ExecStart=${process.execPath} ((?:--[a-z-]+(?:=\\S+)? )*)/opt/mailcow-cold-standby/dist/src/cli/backup-to-hetzner\\.js run --config /etc/mailcow-backup/\\.env$`, 'm').exec(service);
      assert.ok(exec, service);
      // The node flags must be ones this node takes on its command line (NODE_OPTIONS refuses some).
      const flags = exec[1]!.trim().split(' ').filter(Boolean);
      assert.ok(flags.includes('--max-semi-space-size=1'), flags.join(' '));
      assert.ok(flags.includes('--expose-gc'), `the run's memory watch needs --expose-gc: ${flags.join(' ')}`);
      const n = await run(process.execPath, [...flags, '-e', 'process.exit(0)'], {});
      assert.equal(n.code, 0, n.stderr);
      assert.equal(n.stderr, '');
      assert.doesNotMatch(service, /tsx|ts-node|--loader|@[A-Z_]+@/);
      for (const l of ['Type=oneshot', 'After=network-online.target docker.service', 'Requires=docker.service', 'ProtectSystem=strict', 'PrivateTmp=yes', 'NoNewPrivileges=yes', 'OnFailure=mailcow-backup-failure@%n.service']) {
        assert.ok(service.split('\n').includes(l), l);
      }
      assert.match(service, /^ReadWritePaths=.*-\/var\/tmp\/mailcow-backup.*-\/var\/lib\/mailcow-backup.*-\/var\/log\/mailcow-backup\.log/m);
      assert.match(service, /^BindPaths=\/var\/tmp\/mailcow-backup$/m, 'the host temp dir is bound over the private /var/tmp');
      // docker.service does not exist here: a stub on the unit path stands in for it.
      const stub = path.join(tmp, 'stub-units');
      fs.mkdirSync(stub, { recursive: true });
      fs.writeFileSync(path.join(stub, 'docker.service'), '[Service]\nExecStart=/bin/true\n');
      const r = await run('systemd-analyze', ['verify', ...['mailcow-backup.service', 'mailcow-backup.timer', 'mailcow-backup-failure@.service'].map((n) => path.join(unitDir(), n))], {
        SYSTEMD_UNIT_PATH: `${stub}:${unitDir()}:`,
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    });

    it('writes the restore drill\'s service and weekly timer (--drill-calendar), which systemd-analyze verify accepts', async () => {
      const service = fs.readFileSync(path.join(unitDir(), 'mailcow-backup-drill.service'), 'utf8');
      const timer = fs.readFileSync(path.join(unitDir(), 'mailcow-backup-drill.timer'), 'utf8');
      assert.match(service, /^ExecStart=\S+ (?:--[a-z-]+(?:=\S+)? )*\/opt\/mailcow-cold-standby\/dist\/src\/cli\/restore-from-hetzner\.js drill --config \/etc\/mailcow-backup\/\.env$/m);
      assert.match(service, /^SuccessExitStatus=6 130 143$/m, 'a backup found not restorable is reported by the drill, not a unit failure');
      assert.doesNotMatch(service, /^OnFailure=|^ExecStopPost=|@[A-Z_]+@/m);
      assert.ok(service.split('\n').includes('ProtectSystem=strict'));
      assert.match(timer, /^OnCalendar=weekly$/m);
      assert.match(timer, /^Unit=mailcow-backup-drill\.service$/m);
      const stub = path.join(tmp, 'stub-units');
      fs.mkdirSync(stub, { recursive: true });
      fs.writeFileSync(path.join(stub, 'docker.service'), '[Service]\nExecStart=/bin/true\n');
      const r = await run('systemd-analyze', ['verify', ...['mailcow-backup-drill.service', 'mailcow-backup-drill.timer'].map((n) => path.join(unitDir(), n))], { SYSTEMD_UNIT_PATH: `${stub}:${unitDir()}:` });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    });

    it('schedules daily at 03:00 with a randomized delay, persistent, and systemd-analyze calendar accepts it', async () => {
      const timer = fs.readFileSync(path.join(unitDir(), 'mailcow-backup.timer'), 'utf8');
      const spec = /^OnCalendar=(.+)$/m.exec(timer)?.[1];
      assert.equal(spec, '*-*-* 03:00:00');
      assert.match(timer, /^RandomizedDelaySec=30min$/m);
      assert.match(timer, /^Persistent=true$/m);
      const r = await run('systemd-analyze', ['calendar', spec!]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Next elapse:/);
    });

    it('every unit it writes scores <= 5.0 in systemd-analyze security --offline, and says why for each permission it keeps', async (t) => {
      const written = fs.readdirSync(unitDir()).sort();
      assert.deepEqual(written, ['mailcow-backup-drill.service', 'mailcow-backup-drill.timer', 'mailcow-backup-failure@.service', 'mailcow-backup.service', 'mailcow-backup.timer']);
      for (const name of written) {
        const text = fs.readFileSync(path.join(unitDir(), name), 'utf8');
        if (name.endsWith('.timer')) {
          // A timer starts a service and runs nothing itself (systemd-analyze would score it as an empty service).
          assert.doesNotMatch(text, /^\[Service\]|^Exec/m, name);
          continue;
        }
        const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', path.join(unitDir(), name)]);
        const m = /Overall exposure level for \S+: ([0-9.]+) (\S+)/.exec(r.stdout);
        assert.ok(m, name + r.stdout + r.stderr);
        t.diagnostic(`${name}: systemd-analyze security exposure ${m[1]} ${m[2]}`);
        assert.ok(Number(m[1]) <= 5.0, `${name}: exposure ${m[1]} ${m[2]}`);
        if (name === 'mailcow-backup.service') assert.ok(Number(m[1]) <= 2.5, `exposure ${m[1]} (was 2.0 when written)`);
        // Each permission that stays is explained by a comment right above it.
        const lines = text.split('\n');
        for (const [i, l] of lines.entries()) {
          if (!/^(CapabilityBoundingSet|ReadWritePaths|RestrictAddressFamilies|BindPaths|BindReadOnlyPaths|ExecStartPre=\+|ExecStartPost=\+|ExecStopPost=\+|SuccessExitStatus)/.test(l)) continue;
          assert.ok(lines.slice(Math.max(0, i - 4), i).some((x) => x.startsWith('#')), `${name}: no comment explains '${l}'`);
        }
      }
      const hook = fs.readFileSync(path.join(unitDir(), 'mailcow-backup-failure@.service'), 'utf8');
      for (const l of ['PrivateNetwork=yes', 'ProtectSystem=strict', 'ReadWritePaths=-/run/motd.d -/var/lib/mailcow-backup', 'CapabilityBoundingSet=CAP_DAC_OVERRIDE', 'PrivateDevices=yes', 'NoNewPrivileges=yes']) {
        assert.ok(hook.split('\n').includes(l), `failure hook: ${l}`);
      }
    });

    it('writes a logrotate file that logrotate -d accepts', async () => {
      const file = path.join(root, 'etc/logrotate.d/mailcow-backup');
      const text = fs.readFileSync(file, 'utf8');
      assert.match(text, /^\/var\/log\/mailcow-backup\.log \{$/m);
      const r = await run('logrotate', ['-d', '-s', path.join(tmp, 'logrotate.state'), file]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /error/i);
    });

    it('has a failure hook that logs with priority err and leaves markers, without e-mail', async () => {
      const unit = fs.readFileSync(path.join(unitDir(), 'mailcow-backup-failure@.service'), 'utf8');
      assert.doesNotMatch(unit, /sendmail|smtp|nodemailer/i);
      // Run its shell command the way systemd would: $$ -> $, %% -> %, %i -> the failed unit.
      const line = /^ExecStart=\/bin\/sh -c '(.*)'$/m.exec(unit)?.[1];
      assert.ok(line, 'ExecStart is a /bin/sh -c command');
      const stateDir = /mkdir -p (\S+) &&/.exec(line)![1]!;
      const fakeState = path.join(tmp, 'hook-state');
      const motd = path.join(tmp, 'hook-motd/mailcow-backup-failed');
      const script = line
        .replace(/\$\$/g, '$')
        .replace(/%i/g, 'mailcow-backup.service')
        .replace(/%%/g, '%')
        .replace(/\\\\n/g, '\\n')
        .split(stateDir)
        .join(fakeState);
      const bin = path.join(tmp, 'hook-bin');
      fs.mkdirSync(bin, { recursive: true });
      for (const c of ['date', 'mkdir']) if (!fs.existsSync(path.join(bin, c))) fs.symlinkSync(`/bin/${c}`, path.join(bin, c));
      const r = await run('/bin/sh', ['-c', script], { MOTD: motd, PATH: bin });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^<3>mailcow backup FAILED: mailcow-backup\.service failed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; see: journalctl -u mailcow-backup\.service/);
      assert.match(fs.readFileSync(motd, 'utf8'), /^mailcow backup FAILED/);
      assert.match(fs.readFileSync(path.join(fakeState, 'last-failure'), 'utf8'), /^mailcow backup FAILED/);
      // The backup unit clears the markers only after a run that made its backup: busy (75) and
      // stopped (143) runs are no failures (no hook) and leave an earlier failure's marker alone.
      const service = fs.readFileSync(path.join(unitDir(), 'mailcow-backup.service'), 'utf8');
      assert.match(service, /^SuccessExitStatus=75 130 143$/m);
      const post = /^ExecStopPost=\+\/bin\/sh -c '(.*)'$/m.exec(service)?.[1];
      assert.ok(post, 'ExecStopPost is a /bin/sh -c command');
      assert.ok(post.includes('/run/motd.d/mailcow-backup-failed /var/lib/mailcow-backup/last-failure'), post);
      const clear = post.replace(/\$\$/g, '$').split('/run/motd.d/mailcow-backup-failed').join(motd).split('/var/lib/mailcow-backup').join(fakeState);
      for (const status of ['75', '143', '1']) {
        assert.equal((await run('/bin/sh', ['-c', clear], { EXIT_STATUS: status })).code, 0);
        assert.ok(fs.existsSync(motd) && fs.existsSync(path.join(fakeState, 'last-failure')), `exit ${status} left the markers`);
      }
      assert.equal((await run('/bin/sh', ['-c', clear], { EXIT_STATUS: '0' })).code, 0);
      assert.ok(!fs.existsSync(motd) && !fs.existsSync(path.join(fakeState, 'last-failure')), 'exit 0 clears the markers');
    });

    it('a second install changes nothing and says so', async () => {
      const again = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /\.env exists: kept as it is \(never overwritten\)/);
      assert.match(again.stdout, /already pinned/);
      assert.match(again.stdout, /mailcow-backup\.service \(unchanged\)/);
      const now = snapshot(root);
      assert.deepEqual([...now.entries()].filter(([k, v]) => afterFirst.get(k) !== v), []);
      assert.deepEqual([...afterFirst.keys()].filter((k) => !now.has(k)), []);
    });

    it('uninstall keeps config, state and logs; --purge removes them too', async () => {
      const r = await installer(['--root', root, '--uninstall']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const left = [...snapshot(root).keys()].filter((k) => !pristine.has(k) && !k.startsWith('opt/mailcow-dockerized/'));
      const kept = ['root/.ssh/id_ed25519.pub', 'etc', 'etc/mailcow-backup', 'etc/mailcow-backup/.env', 'etc/mailcow-backup/known_hosts', 'etc/mailcow-backup/install-manifest.json', 'var', 'var/lib', 'var/lib/mailcow-backup', 'var/tmp', 'var/tmp/mailcow-backup', 'var/log', 'var/log/mailcow-backup.log'];
      assert.deepEqual(left.sort(), kept.sort());
      assert.ok(fs.existsSync(path.join(root, 'root/.ssh/id_ed25519')), 'the SSH key is never removed');
      const purge = await installer(['--root', root, '--uninstall', '--purge']);
      assert.equal(purge.code, 0, purge.stdout + purge.stderr);
      // What is left is what was there before, plus the key's .pub derived by the install.
      const rest = [...snapshot(root).keys()].filter((k) => !pristine.has(k) && !k.startsWith('opt/mailcow-dockerized/'));
      assert.deepEqual(rest, ['root/.ssh/id_ed25519.pub']);
    });
  });

  it('installing again keeps the installed schedule, delay, timeout and program folder unless a flag changes them, and says what changes; --env-file typos are named', async () => {
    const root = await makeRoot('reinstall');
    const envFile = path.join(root, 'old.env');
    fs.writeFileSync(envFile, 'REMOTE_RETENTION_DAYS=14\nBWLIMIT_KPBS=5000\n');
    const timer = () => fs.readFileSync(path.join(root, 'etc/systemd/system/mailcow-backup.timer'), 'utf8');
    const service = () => fs.readFileSync(path.join(root, 'etc/systemd/system/mailcow-backup.service'), 'utf8');
    const first = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--env-file', envFile, '--on-calendar', '*-*-* 02:30:00', '--timeout', '6h', '--install-dir', '/opt/mcs-custom']);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.ok(first.stdout.includes(`WARN  ${envFile}: unknown key BWLIMIT_KPBS is ignored (a typo?)`), first.stdout);
    assert.equal(parse(fs.readFileSync(path.join(root, 'etc/mailcow-backup/.env'), 'utf8')).REMOTE_RETENTION_DAYS, '14');
    assert.match(timer(), /^OnCalendar=\*-\*-\* 02:30:00$/m);

    const again = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(timer(), /^OnCalendar=\*-\*-\* 02:30:00$/m, 'the schedule survives an upgrade');
    assert.match(service(), /^TimeoutStartSec=6h$/m);
    assert.match(again.stdout, /^ok    schedule '\*-\*-\* 02:30:00' kept from the installed mailcow-backup\.timer \(--on-calendar changes it\)$/m);
    assert.match(again.stdout, /^ok    start timeout '6h' kept from the installed mailcow-backup\.service \(--timeout changes it\)$/m);
    assert.match(again.stdout, /mailcow-backup\.timer \(unchanged\)/);
    assert.match(again.stdout, /^ok    program folder \/opt\/mcs-custom kept from the last install \(--install-dir changes it\)$/m);
    assert.match(service(), /^ExecStart=\S+ .*\/opt\/mcs-custom\/dist\/src\/cli\/backup-to-hetzner\.js run /m);
    assert.ok(!fs.existsSync(path.join(root, 'opt/mailcow-cold-standby')), 'no second copy of the program in the default folder');

    const changed = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--on-calendar', '*-*-* 04:15:00']);
    assert.equal(changed.code, 0, changed.stdout + changed.stderr);
    assert.match(changed.stdout, /^ok    schedule changes: '\*-\*-\* 02:30:00' -> '\*-\*-\* 04:15:00' \(--on-calendar\)$/m);
    assert.match(timer(), /^OnCalendar=\*-\*-\* 04:15:00$/m);
    assert.match(service(), /^TimeoutStartSec=6h$/m);
  });

  it("installing again keeps the restore drill's schedule, 'off' included, unless --drill-calendar changes it", async () => {
    const root = await makeRoot('reinstall-drill');
    const drillTimer = path.join(root, 'etc/systemd/system/mailcow-backup-drill.timer');
    const off = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--drill-calendar', 'off']);
    assert.equal(off.code, 0, off.stdout + off.stderr);
    assert.ok(!fs.existsSync(drillTimer), 'off: no drill timer');
    const again = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.ok(!fs.existsSync(drillTimer), "an upgrade does not turn the admin's 'off' back on");
    assert.match(again.stdout, /^ok    restore drill schedule 'off' kept from the last install \(--drill-calendar changes it\)$/m);
    const on = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--drill-calendar', 'Sun *-*-* 05:00:00']);
    assert.equal(on.code, 0, on.stdout + on.stderr);
    assert.match(fs.readFileSync(drillTimer, 'utf8'), /^OnCalendar=Sun \*-\*-\* 05:00:00$/m);
    const kept = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint]);
    assert.equal(kept.code, 0, kept.stdout + kept.stderr);
    assert.match(fs.readFileSync(drillTimer, 'utf8'), /^OnCalendar=Sun \*-\*-\* 05:00:00$/m, 'the drill schedule survives an upgrade');
  });

  it('--on-calendar hourly --dump-interval 24: hourly timer with a short delay; the new .env dumps daily, goes stale after 4 h, mails a daily digest, keeps 48 hourly backups', async () => {
    const root = await makeRoot('hourly');
    const r = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--on-calendar', 'hourly', '--dump-interval', '24', '--set', 'KEEP_HOURLY=24']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const timer = fs.readFileSync(path.join(root, 'etc/systemd/system/mailcow-backup.timer'), 'utf8');
    assert.match(timer, /^OnCalendar=hourly$/m);
    assert.match(timer, /^RandomizedDelaySec=5min$/m);
    const env = parse(fs.readFileSync(path.join(root, 'etc/mailcow-backup/.env'), 'utf8'));
    assert.deepEqual([env.DUMP_INTERVAL_HOURS, env.STALE_AFTER_HOURS, env.NOTIFY_ON, env.KEEP_HOURLY], ['24', '4', 'daily', '24']);
    // Not every hourly backup of 30 days (720, each paying its folders): 2 days of them, then one a day for 30 days.
    assert.deepEqual([env.REMOTE_RETENTION_DAYS, env.KEEP_DAILY], ['2', '30']);
    const ownRoot = await makeRoot('hourly-own');
    const own = await installer(['--root', ownRoot, ...base, '--accept-host-key', box.hostKeyFingerprint, '--on-calendar', 'hourly', '--retention-days', '14']);
    assert.equal(own.code, 0, own.stdout + own.stderr);
    const ownEnv = parse(fs.readFileSync(path.join(ownRoot, 'etc/mailcow-backup/.env'), 'utf8'));
    assert.equal(ownEnv.REMOTE_RETENTION_DAYS, '14', '--retention-days wins over the schedule default');
    const bad = await installer(['--root', await makeRoot('hourly-bad'), ...base, '--accept-host-key', box.hostKeyFingerprint, '--dump-interval', 'often']);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /DUMP_INTERVAL_HOURS='often' \(from --dump-interval\) must be a whole number/);
  });

  it('asks interactively (scripted answers through the real prompt definitions) and pins after confirmation', async () => {
    const root = await makeRoot('interactive');
    const asked: string[] = [];
    const out = capture();
    const opts = resolveOptions({ root, 'skip-check': true }, {});
    const code = await runInstall(opts, {
      exec: createExec(),
      asker: scriptedAsker({ HETZNER_HOST: '127.0.0.1', HETZNER_PORT: String(box.port), HETZNER_USER: box.user, REMOTE_RETENTION_DAYS: '14', EMAIL_NOTIFICATIONS: false, acceptHostKey: true }, asked),
      out,
      packageRoot: PKG,
    });
    assert.equal(code, 0, out.lines.join('\n'));
    assert.deepEqual(asked.slice(0, 7), ['HETZNER_HOST', 'HETZNER_USER', 'HETZNER_PORT', 'HETZNER_REMOTE_PATH', 'SSH_KEY_PATH', 'MAILCOW_PATH', 'REMOTE_RETENTION_DAYS']);
    assert.ok(asked.includes('acceptHostKey'));
    // The loopback box's key is not Hetzner's: the warning says so, and nothing claims a match.
    assert.ok(out.lines.includes(`WARN none of these is one of Hetzner's published Storage Box keys (${Object.values(HETZNER_FINGERPRINTS).join(', ')}).`), out.lines.join('\n'));
    assert.ok(!out.lines.some((l) => /matches Hetzner's published|\(Hetzner's published Storage Box key\)/.test(l)), out.lines.join('\n'));
    assert.equal(parse(fs.readFileSync(path.join(root, 'etc/mailcow-backup/.env'), 'utf8')).REMOTE_RETENTION_DAYS, '14');
    assert.match(fs.readFileSync(path.join(root, 'etc/mailcow-backup/known_hosts'), 'utf8'), new RegExp(`^\\[127\\.0\\.0\\.1\\]:${box.port} `, 'm'));
  });

  it("pins a key that matches Hetzner's published fingerprints without asking, and only such a key", async () => {
    // The published list is injected with the loopback box's own fingerprint: the key the box
    // presents then stands for a real Storage Box's key.
    const published = [HETZNER_FINGERPRINTS.rsa, box.hostKeyFingerprint];
    const root = await makeRoot('auto-pin');
    const out = capture();
    const opts = resolveOptions({ root, host: '127.0.0.1', port: String(box.port), user: box.user, 'skip-check': true }, {});
    const code = await runInstall(opts, { exec: createExec(), asker: unattendedAsker(), out, packageRoot: PKG, publishedFingerprints: published });
    assert.equal(code, 0, out.lines.join('\n'));
    assert.ok(out.lines.includes(`ok host key matches Hetzner's published fingerprint ${box.hostKeyFingerprint}`), out.lines.join('\n'));
    assert.ok(out.lines.includes(`   ssh-ed25519 ${box.hostKeyFingerprint}  (Hetzner's published Storage Box key)`), out.lines.join('\n'));
    assert.ok(!out.lines.some((l) => l.startsWith('WARN') && /host key|published/.test(l)), out.lines.join('\n'));
    const known = fs.readFileSync(path.join(root, 'etc/mailcow-backup/known_hosts'), 'utf8');
    assert.equal(execFileSync('ssh-keygen', ['-lf', '-'], { input: known }).toString().match(/SHA256:\S+/g)?.join(), box.hostKeyFingerprint, 'exactly the matching key is pinned');

    // Control: the real published list does not hold the loopback key, so the same unattended
    // install refuses it and pins nothing.
    const other = await makeRoot('auto-pin-real-list');
    const refused = capture();
    await assert.rejects(
      runInstall(resolveOptions({ root: other, host: '127.0.0.1', port: String(box.port), user: box.user, 'skip-check': true }, {}), { exec: createExec(), asker: unattendedAsker(), out: refused, packageRoot: PKG }),
      (e: Error) => e.message.includes(`presents host key ${box.hostKeyFingerprint}, which is not one of Hetzner's published Storage Box keys`),
    );
    assert.ok(!fs.existsSync(path.join(other, 'etc/mailcow-backup/known_hosts')));
  });

  it('refuses a non-Hetzner host key when the admin says no', async () => {
    const root = await makeRoot('interactive-no');
    const out = capture();
    const opts = resolveOptions({ root, host: '127.0.0.1', port: String(box.port), user: box.user, 'skip-check': true }, {});
    await assert.rejects(
      runInstall(opts, { exec: createExec(), asker: scriptedAsker({ EMAIL_NOTIFICATIONS: false, acceptHostKey: false }), out, packageRoot: PKG }),
      (e: Error) => /host key of \[127\.0\.0\.1\]:\d+ refused/.test(e.message),
    );
    assert.ok(!fs.existsSync(path.join(root, 'etc/mailcow-backup/known_hosts')));
  });

  /** An install under --root with --check, every path the check needs below the root. */
  const installWithCheck = (root: string, extra: string[] = []) => {
    const R = (p: string) => path.join(root, p);
    return installer([
      '--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--check',
      '--mailcow-path', R('opt/mailcow-dockerized'),
      '--ssh-key', R('root/.ssh/id_ed25519'),
      '--set', `SSH_KNOWN_HOSTS=${R('etc/mailcow-backup/known_hosts')}`,
      '--set', `STATE_DIR=${R('var/lib/mailcow-backup')}`,
      '--set', `STATUS_FILE=${R('var/lib/mailcow-backup/status.json')}`,
      '--set', `TEMP_BACKUP_DIR=${R('var/tmp/mailcow-backup')}`,
      '--set', `LOG_FILE=${R('var/log/mailcow-backup.log')}`,
      '--set', `VMAIL_VOLUME_PATH=${vmailOf.get(root)}`,
      ...extra,
    ]);
  };

  it('--role standby writes the standby service and an hourly timer, no backup timer, and ROLE=standby; a backup unit of an earlier install is removed', async () => {
    const root = await makeRoot('standby-role');
    const unitDir = path.join(root, 'etc/systemd/system');
    // An earlier primary install on this host left a backup timer: a standby must not keep it.
    fs.mkdirSync(unitDir, { recursive: true });
    fs.writeFileSync(path.join(unitDir, 'mailcow-backup.timer'), '[Timer]\nOnCalendar=*-*-* 03:00:00\n');
    const r = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--role', 'standby']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // The restore drill runs on a standby too: it proves the copies this host would fail over with.
    assert.deepEqual(fs.readdirSync(unitDir).sort(), ['mailcow-backup-drill.service', 'mailcow-backup-drill.timer', 'mailcow-backup-failure@.service', 'mailcow-standby.service', 'mailcow-standby.timer']);
    assert.equal(parse(fs.readFileSync(path.join(root, 'etc/mailcow-backup/.env'), 'utf8')).ROLE, 'standby');
    const service = fs.readFileSync(path.join(unitDir, 'mailcow-standby.service'), 'utf8');
    assert.match(service, /^ExecStart=\S+ \/opt\/mailcow-cold-standby\/dist\/src\/cli\/restore-from-hetzner\.js standby --config \/etc\/mailcow-backup\/\.env$/m);
    assert.match(service, /^ReadWritePaths=.*-\/var\/lib\/mailcow-backup\/standby( |$)/m);
    const timer = fs.readFileSync(path.join(unitDir, 'mailcow-standby.timer'), 'utf8');
    assert.match(timer, /^OnCalendar=hourly$/m);
    assert.match(r.stdout, /skipped under --root: systemctl daemon-reload; systemctl enable --now mailcow-standby\.timer; systemctl start --no-block mailcow-standby\.service/);
    const v = await run('systemd-analyze', ['verify', ...['mailcow-standby.service', 'mailcow-standby.timer'].map((n) => path.join(unitDir, n))], { SYSTEMD_UNIT_PATH: `${unitDir}:` });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(v.stderr.trim(), '', v.stderr);
    // --on-calendar is honoured; a config that says otherwise is never rewritten: the installer refuses.
    const again = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--role', 'standby', '--on-calendar', '*:0/30']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(fs.readFileSync(path.join(unitDir, 'mailcow-standby.timer'), 'utf8'), /^OnCalendar=\*:0\/30$/m);
    const primary = await installer(['--root', root, ...base, '--accept-host-key', box.hostKeyFingerprint, '--role', 'primary']);
    assert.equal(primary.code, 2, primary.stdout + primary.stderr);
    assert.match(primary.stderr, /--role primary, but \/etc\/mailcow-backup\/\.env says ROLE=standby; the installer never changes an existing config: set ROLE=primary in it, then run the installer again/);
  });

  it('with --check under --root runs backup-to-hetzner check against the loopback box', async () => {
    const root = await makeRoot('check');
    const r = await installWithCheck(root);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /== backup-to-hetzner check/);
    assert.match(r.stdout, /WARN\s+host key\s+pinned/, "the loopback box's key is pinned, and is not Hetzner's");
    assert.match(r.stdout, /OK\s+connection\s/);
    assert.match(r.stdout, /OK\s+unit paths\s+.*\/etc\/systemd\/system\/mailcow-backup\.service lets the timer's runs write every path the config names/, 'compared with the unit just written');
    assert.doesNotMatch(r.stdout, /tonight's backup would fail|^FAIL/m);
  });
  describe('on a host whose mailcow looks freshly installed while the box holds backups', () => {
    const newest = 'mailcow-2026-11-23-03-00-00';
    const boxFolder = () => path.join(box.root, 'backups/mailcow', newest);
    /** The newest backup on the box, as a run records it: `files` mail files in `mailboxes` mailboxes. */
    const publishOnBox = (mailboxes: number, files: number) => {
      fs.mkdirSync(boxFolder(), { recursive: true });
      const perMailbox = Object.fromEntries(Array.from({ length: mailboxes }, (_, i) => [`example.com/user${i}`, { messages: Math.floor(files / mailboxes), bytes: 1000 }]));
      fs.writeFileSync(path.join(boxFolder(), 'backup.json'), JSON.stringify({ name: newest, bytes: 50 << 20, files: files + 7, vmail: { dir: 'vmail', files, bytes: 40 << 20, dirs: 90, mailboxes: perMailbox } }));
    };
    after(() => fs.rmSync(path.join(box.root, 'backups'), { recursive: true, force: true }));

    it('writes everything but holds the timer back, with one line saying to restore first and how to enable it', async () => {
      publishOnBox(6, 400);
      const root = await makeRoot('fresh-standby');
      // A fresh mailcow: the vmail volume holds no mailbox yet.
      for (const n of fs.readdirSync(vmailOf.get(root)!)) fs.rmSync(path.join(vmailOf.get(root)!, n), { recursive: true });
      const r = await installWithCheck(root);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const held = r.stdout.split('\n').filter((l) => /looks freshly installed/.test(l));
      assert.equal(held.length, 1, r.stdout);
      assert.match(held[0]!, new RegExp(`against ${newest}: mailboxes 6 → 0 \\(-100 %\\), mail files 400 → 0 \\(-100 %\\)\\), so mailcow-backup\\.timer is NOT enabled`));
      assert.match(held[0]!, /Restore first \(sudo restore-from-hetzner\), then enable it: systemctl enable --now mailcow-backup\.timer$/);
      assert.match(r.stdout, /skipped under --root: systemctl daemon-reload$/m, 'no enable step');
      assert.doesNotMatch(r.stdout, /the timer runs/);
      for (const f of ['etc/mailcow-backup/.env', 'etc/systemd/system/mailcow-backup.service', 'etc/systemd/system/mailcow-backup.timer', 'usr/local/bin/backup-to-hetzner']) assert.ok(fs.lstatSync(path.join(root, f), { throwIfNoEntry: false }), f);

      // --enable-timer: the admin's deliberate choice.
      const forced = await installWithCheck(root, ['--enable-timer']);
      assert.equal(forced.code, 0, forced.stdout + forced.stderr);
      assert.doesNotMatch(forced.stdout, /looks freshly installed/);
      assert.match(forced.stdout, /skipped under --root: systemctl daemon-reload; systemctl enable --now mailcow-backup\.timer/);
    });

    it('enables the timer on a host that holds about what the newest backup holds', async () => {
      const root = await makeRoot('primary');
      const mail = await generateMaildir(vmailOf.get(root)!, { seed: 3, totalBytes: 256 * 1024 });
      assert.ok(mail.files > 10);
      // A day's worth of mail less than the newest backup: well within the threshold.
      publishOnBox(6, mail.files + 5);
      const r = await installWithCheck(root);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /looks freshly installed/);
      assert.match(r.stdout, new RegExp(`not far smaller than ${newest}`));
      assert.match(r.stdout, /skipped under --root: systemctl daemon-reload; systemctl enable --now mailcow-backup\.timer/);
    });
  });
});

describe('installer parts', () => {
  it('writes values that dotenv reads back unchanged', () => {
    for (const v of ['plain', 'with space', "it's", 'a "quoted" # not comment', 'x=y']) {
      assert.equal(parse(`K=${envValue('K', v)}\n`).K, v, v);
    }
    const text = renderEnv({ HETZNER_HOST: 'u1.your-storagebox.de', HETZNER_USER: 'u1', SMTP_USER: 'me', SMTP_PASSWORD: 'p w#d' });
    const c = configSchema.parse(parse(text));
    assert.equal(c.SMTP_PASSWORD, 'p w#d');
    assert.equal(c.HETZNER_PORT, 23);
  });

  it('renders units for other paths: private /tmp binding, home binds, bad paths refused', () => {
    assert.match(tempBindLine('/var/tmp/x'), /^BindPaths=\/var\/tmp\/x$/m);
    assert.doesNotMatch(tempBindLine('/srv/backup-tmp'), /^BindPaths/m);
    assert.deepEqual(homeBinds('/etc/mailcow-backup/id_ed25519', '/usr/bin/node'), ['-/root/.docker']);
    assert.deepEqual(homeBinds('/root/.ssh/id_ed25519', '/root/.nvm/versions/node/v20.20.2/bin/node'), ['-/root/.ssh', '-/root/.docker', '-/root/.nvm/versions/node/v20.20.2']);
    const config = configSchema.parse({ HETZNER_HOST: 'u1.your-storagebox.de', HETZNER_USER: 'u1', TEMP_BACKUP_DIR: '/srv/tmp dir' });
    assert.throws(() => renderUnits({ nodePath: '/usr/bin/node', installDir: '/opt/x', configPath: '/etc/x/.env', onCalendar: 'daily', randomizedDelay: '0', timeoutStart: '1h', motdFile: '/run/motd.d/x', config }), /TEMP_BACKUP_DIR "\/srv\/tmp dir" cannot be used in a unit file/);
  });

  it('names the package command for Debian/Ubuntu and Rocky/RHEL', () => {
    assert.equal(packageManagerOf('ID=ubuntu\nID_LIKE=debian\n'), 'apt');
    assert.equal(packageManagerOf('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), 'dnf');
    assert.deepEqual(installCommand(['ssh', 'ssh-keyscan', 'zstd', 'docker'], 'apt'), ['apt-get', 'install', '-y', 'openssh-client', 'zstd']);
    assert.deepEqual(installCommand(['rsync', 'ssh'], 'dnf'), ['dnf', 'install', '-y', 'rsync', 'openssh-clients']);
  });

  it('stops on a Node.js older than package.json engines and names how to get one for this distribution', async () => {
    assert.equal(`>=${MIN_NODE}`, (JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node);
    const out: Out = { ok: () => {}, info: () => {}, warn: () => {}, step: () => {} };
    const tooOld = (nodeVersion: string, osRelease: string) => checkBasics({ root: '/tmp/x', dryRun: true, nodeVersion, osRelease }, out).then(() => 'accepted', (e: Error) => e.message);
    const debian12 = await tooOld('20.16.0', 'ID=debian\nVERSION_ID="12"\n');
    assert.match(debian12, /Node\.js 20\.16\.0 is too old; 20\.17 or newer is needed: Debian 12 ships an older one; apt-get install -y npm && bash \S+\/scripts\/node-version\.sh 24 \/usr\/local/);
    assert.match(await tooOld('18.19.1', 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'), /Ubuntu 24\.04 ships an older one; apt-get install -y npm && bash /);
    assert.match(await tooOld('18.19.1', 'ID=debian\nVERSION_ID="13"\n'), /apt-get install -y nodejs/);
    assert.match(await tooOld('16.20.2', 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.6"\n'), /dnf module install -y nodejs:22/);
    assert.match(await tooOld('16.20.2', 'ID="almalinux"\nVERSION_ID="10.0"\n'), /dnf install -y nodejs/);
    assert.equal(await tooOld('20.17.0', 'ID=debian\nVERSION_ID="12"\n'), 'accepted');
  });

  it('the unattended answerer takes defaults and names the flag for a missing value', async () => {
    const a = unattendedAsker();
    assert.equal(await a.text({ name: 'HETZNER_PORT', message: '', default: '23', flag: '--port VALUE' }), '23');
    await assert.rejects(a.text({ name: 'HETZNER_HOST', message: '', flag: '--host VALUE' }), /pass --host VALUE/);
    assert.equal(await a.confirm({ name: 'x', message: '', default: false }), false);
  });

  it("knows Hetzner's published fingerprints", () => {
    assert.equal(HETZNER_FINGERPRINTS.ed25519, 'SHA256:XqONwb1S0zuj5A1CDxpOSuD2hnAArV1A3wKY7Z3sdgM');
  });
});
