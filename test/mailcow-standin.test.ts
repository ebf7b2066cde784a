/**
 * Tests of the mailcow stand-in (helper-scripts/backup_and_restore.sh over folder "volumes")
 * and of the maildir fixture generator.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStandinMailcow, mutateDatabases, type StandinMailcow } from '../src/sandbox/mailcow-standin.js';
import { generateMaildir, mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { docker as fakeDocker, dockerEnv, startDumpContainer } from './support/docker.js';
import { createLogger } from '../src/adapters/logger.js';
import { runMailcowRestore } from '../src/restore/mailcow-restore.js';

const ARCHIVES = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mariadb'];
const VOLUME_OF: Record<string, Parameters<StandinMailcow['volume']>[0]> = {
  vmail: 'vmail', crypt: 'crypt', redis: 'redis', rspamd: 'rspamd', postfix: 'postfix', mariadb: 'mysql',
};

interface RunResult { code: number | null; stdout: string; stderr: string; timedOut: boolean }

/** Run the stand-in; stdin gets `input` and is then closed (EOF). Never hangs: killed after timeoutMs. */
function run(mc: StandinMailcow, args: string[], env: Record<string, string | undefined>, input = '', timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const fullEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('STANDIN_') && k !== 'MAILCOW_BACKUP_LOCATION' && k !== 'THREADS') fullEnv[k] = v;
    // Backups run docker as the real script does: the fake docker CLI of the sandbox.
    Object.assign(fullEnv, dockerEnv(mc.path));
    for (const [k, v] of Object.entries(env)) if (v !== undefined) fullEnv[k] = v;
    const child = spawn(mc.script, args, { env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }); });
  });
}

interface DriveOptions {
  /** choose the restore point from the listed folders (default: the last one) */
  folder?: (folders: string[]) => string;
  /** dataset label to pick, e.g. 'Mail directory (/var/vmail)'; undefined = kill the script at the dataset menu (end of input would leave it waiting forever) */
  label?: string;
  resync?: boolean;
  proceedSql?: boolean;
}

interface DriveResult extends RunResult { datasets: string[]; answers: string[] }

const MENU_LINE = /^(?:\x1b\[[0-9;]*m)?\[ (\d+|NaN) \] - (.*?)(?:\x1b\[[0-9;]*m)?$/;

/** Drive `restore` through pipes the way a wrapper must: read the menus, answer by label. */
function driveRestore(mc: StandinMailcow, location: string, o: DriveOptions, env: Record<string, string> = {}): Promise<DriveResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(mc.script, ['restore'], {
      env: { ...dockerEnv(mc.path), MAILCOW_BACKUP_LOCATION: location, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let consumed = 0; // stdout offset up to which prompts were answered
    let timedOut = false;
    const datasets: string[] = [];
    const answers: string[] = [];
    const answer = (s: string) => { answers.push(s); child.stdin.write(`${s}\n`); };
    const menuSince = (from: number): { n: string; label: string }[] =>
      stdout.slice(from).split('\n').map((l) => MENU_LINE.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m) => ({ n: m[1]!, label: m[2]! }));
    child.stdin.on('error', () => undefined);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const pending = stdout.slice(consumed);
      const at = (p: string) => pending.indexOf(p);
      if (at('Select a restore point: ') >= 0) {
        const folders = menuSince(consumed).map((m) => m.label);
        const want = (o.folder ?? ((fs) => fs[fs.length - 1]!))(folders);
        const entry = menuSince(consumed).find((m) => m.label === want);
        consumed += at('Select a restore point: ') + 'Select a restore point: '.length;
        if (!entry) { child.kill('SIGKILL'); return; }
        answer(entry.n);
      } else if (at('Select a dataset to restore: ') >= 0) {
        const menu = menuSince(consumed);
        consumed += at('Select a dataset to restore: ') + 'Select a dataset to restore: '.length;
        datasets.push(...menu.map((m) => m.label));
        const entry = menu.find((m) => m.label === o.label && m.n !== 'NaN');
        if (!entry) { child.kill('SIGKILL'); return; }
        answer(entry.n);
      } else if (at('Force a resync now? [y|N] ') >= 0) {
        consumed += at('Force a resync now? [y|N] ') + 'Force a resync now? [y|N] '.length;
        answer(o.resync ? 'y' : 'n');
      } else if (at('do you want to proceed? [Y|n] ') >= 0) {
        consumed += at('do you want to proceed? [Y|n] ') + 'do you want to proceed? [Y|n] '.length;
        answer(o.proceedSql === false ? 'n' : 'y');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, 20_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut, datasets, answers }); });
  });
}

/** relative path -> sha256 (files), 'dir' (directories), 'link:<target>' (symlinks) */
async function treeHashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const rel = path.relative(root, p);
      if (e.isSymbolicLink()) out.set(rel, `link:${await fsp.readlink(p)}`);
      else if (e.isDirectory()) { out.set(rel, 'dir'); await walk(p); }
      else if (e.isFile()) out.set(rel, createHash('sha256').update(await fsp.readFile(p)).digest('hex'));
    }
  };
  await walk(root);
  return out;
}

async function freshLocation(base: string, name: string, mode = 0o755): Promise<string> {
  const loc = path.join(base, name);
  await fsp.mkdir(loc, { recursive: true });
  await fsp.chmod(loc, mode);
  return loc;
}

/** mailcow's services that are not running, as `docker compose ps --all` shows them. */
function notRunning(): string[] {
  const rows = fakeDocker(mc.path, ['compose', 'ps', '--all']).stdout.split('\n').slice(1).filter(Boolean);
  return rows.filter((l) => !/ Up /.test(l)).map((l) => /-([a-z]+-mailcow)-1 /.exec(l)![1]!);
}

function backupFolders(loc: string): string[] {
  return readdirSync(loc).filter((n) => /^mailcow-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/.test(n)).sort().map((n) => path.join(loc, n));
}

let tmp: string;
let mc: StandinMailcow;

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'standin-test-'));
  mc = await createStandinMailcow(path.join(tmp, 'mailcow'), { mysqlBytes: 1024 * 1024, maildir: { seed: 11, totalBytes: 2 * 1024 * 1024 } });
});

after(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

describe('createStandinMailcow', () => {
  it('lays out conf, .env symlink, compose file, script and volumes', async () => {
    for (const k of ['COMPOSE_PROJECT_NAME', 'DBNAME', 'DBUSER', 'DBPASS', 'DBROOT', 'REDISPASS', 'MAILCOW_HOSTNAME', 'TZ', 'MAILDIR_SUB', 'DOCKER_COMPOSE_VERSION']) {
      assert.ok(k in mc.conf, `mailcow.conf has ${k}`);
    }
    assert.equal(mc.conf.DOCKER_COMPOSE_VERSION, 'native');
    assert.match(mc.conf.DBPASS!, /^[A-Za-z0-9]{28}$/);
    assert.equal(await fsp.readlink(path.join(mc.path, '.env')), 'mailcow.conf');
    assert.ok(statSync(path.join(mc.path, 'docker-compose.yml')).isFile());
    assert.ok((statSync(mc.script).mode & 0o111) !== 0, 'script is executable');
    for (const v of ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const) {
      assert.ok(readdirSync(mc.volume(v)).length > 0, `${v} volume has content`);
    }
    assert.equal(mc.volume('mysql-vol-1'), mc.volume('mysql'));
    assert.ok(mc.maildir && mc.maildir.files > 50);
  });

  it('mutateDatabases rewrites mysql/redis in place, same sizes, deterministic change amount', async () => {
    const other = await createStandinMailcow(path.join(tmp, 'mc-db'), { mysqlBytes: 512 * 1024 });
    const before1 = await treeHashes(other.volume('mysql'));
    const sizes = new Map([...before1.keys()].map((k) => [k, statSync(path.join(other.volume('mysql'), k)).size]));
    const rdbBefore = await treeHashes(other.volume('redis'));
    const r = await mutateDatabases(other, 5);
    assert.ok(r.files >= 5 && r.bytesChanged > 0);
    const after1 = await treeHashes(other.volume('mysql'));
    let changed = 0;
    for (const [k, h] of after1) {
      if (h !== before1.get(k)) changed++;
      if (h !== 'dir') assert.equal(statSync(path.join(other.volume('mysql'), k)).size, sizes.get(k), `${k} keeps its size`);
    }
    assert.ok(changed >= 3, `some mysql files changed (${changed})`);
    assert.notDeepEqual(await treeHashes(other.volume('redis')), rdbBefore);
  });
});

describe('stand-in backup', () => {
  it('backup all writes every archive; zstd -t passes; contents equal the volumes', async () => {
    const loc = await freshLocation(tmp, 'loc-all');
    const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc, THREADS: '2' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.timedOut);
    // tar -v listing goes to stdout, like the real script, in the container's absolute paths
    assert.ok(r.stdout.split('\n').filter((l) => l.startsWith('/vmail/')).length > 100, 'verbose tar listing on stdout');
    assert.doesNotMatch(r.stdout, new RegExp(`^${mc.path}`, 'm'), 'no host path in the listing');
    const folders = backupFolders(loc);
    assert.equal(folders.length, 1);
    const folder = folders[0]!;
    assert.equal(statSync(folder).mode & 0o777, 0o755);
    const names = readdirSync(folder);
    assert.ok(names.includes('mailcow.conf'));
    assert.ok(names.includes(`.${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}`) || names.some((n) => /^\.(x86_64|aarch64)$/.test(n)));
    assert.equal(await fsp.readFile(path.join(folder, 'mailcow.conf'), 'utf8'), await fsp.readFile(path.join(mc.path, 'mailcow.conf'), 'utf8'));
    for (const a of ARCHIVES) {
      const file = path.join(folder, `backup_${a}.tar.zst`);
      assert.ok(statSync(file).size > 0, `${a} archive non-empty`);
      assert.equal(spawnSync('zstd', ['-t', '-q', file]).status, 0, `zstd -t ${a}`);
      const out = path.join(tmp, `extract-${a}`);
      await fsp.mkdir(out);
      // mailcow's archives hold absolute paths (tar -P): /vmail/..., /backup_mariadb/...
      const inside = a === 'mariadb' ? '/backup_mariadb' : `/${a}`;
      const members = String(spawnSync('tar', ['--use-compress-program=zstd -d', '-Ptf', file]).stdout).split('\n').filter(Boolean);
      assert.ok(members.every((m) => m === `${inside}/` || m.startsWith(`${inside}/`)), `${a}: ${members.slice(0, 3).join(', ')}`);
      const x = spawnSync('tar', ['--use-compress-program=zstd -d', '-xpf', file, '-C', out, '--strip-components=1']);
      assert.equal(x.status, 0, String(x.stderr));
      assert.deepEqual(await treeHashes(out), await treeHashes(mc.volume(VOLUME_OF[a]!)), `${a} archive == volume`);
    }
    const actions = await mc.readActions();
    assert.ok(actions.includes('docker exec redis-mailcow redis-cli save'), actions.join('|'));
  });

  it('missing location with stdin closed: prompts "Create it now?", exits 1, no hang', async () => {
    const loc = path.join(tmp, 'does-not-exist');
    const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc }, '', 10_000);
    assert.equal(r.timedOut, false);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /is not a directory/);
    assert.match(r.stdout, /Create it now\? \[y\|N\] /);
    await assert.rejects(fsp.stat(loc));
  });

  it('unset MAILCOW_BACKUP_LOCATION with stdin closed: asks, then waits forever like the real script', async () => {
    const r = await run(mc, ['backup', 'all'], {}, '', 2_000);
    assert.equal(r.timedOut, true, 'end of input does not end the location loop');
    assert.match(r.stdout, /Backup location \(absolute path, starting with \/\): /);
    assert.equal(r.stderr, '', 'and says nothing about it');
  });

  it('answering y to "Create it now?" creates the location 0755 and backs up', async () => {
    const loc = path.join(tmp, 'created-by-prompt');
    const r = await run(mc, ['backup', 'crypt'], { MAILCOW_BACKUP_LOCATION: loc }, 'y\n');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(statSync(loc).mode & 0o777, 0o755);
    assert.equal(backupFolders(loc).length, 1);
  });

  it('location mode 0750 is refused: not write-able for others, exit 1', async () => {
    const loc = await freshLocation(tmp, 'loc-0750', 0o750);
    const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc });
    assert.equal(r.code, 1);
    assert.ok(r.stdout.includes(`${loc} is not write-able for others, that's required for a backup.`));
    assert.equal(backupFolders(loc).length, 0);
  });

  it('THREADS must be 1..99', async () => {
    const loc = await freshLocation(tmp, 'loc-threads');
    for (const t of ['abc', '0', '100', '1.5']) {
      const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc, THREADS: t });
      assert.equal(r.code, 1, `THREADS=${t}`);
      assert.match(r.stdout, /Thread input is not a number!/);
    }
    assert.equal(backupFolders(loc).length, 0);
  });

  it('bad first/second parameter, missing .env', async () => {
    const loc = await freshLocation(tmp, 'loc-params');
    let r = await run(mc, ['frobnicate'], { MAILCOW_BACKUP_LOCATION: loc });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /First parameter needs to be 'backup' or 'restore'/);
    r = await run(mc, ['backup', 'mail'], { MAILCOW_BACKUP_LOCATION: loc });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /Second parameter needs to be/);
    await fsp.rename(path.join(mc.path, '.env'), path.join(mc.path, '.env.away'));
    try {
      r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /Environment file not found/);
    } finally {
      await fsp.rename(path.join(mc.path, '.env.away'), path.join(mc.path, '.env'));
    }
  });

  it('STANDIN_FAIL_COMPONENT=redis: exit 0 yet no redis archive (unreliable exit status)', async () => {
    const loc = await freshLocation(tmp, 'loc-fail');
    const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc, STANDIN_FAIL_COMPONENT: 'redis' });
    assert.equal(r.code, 0);
    const names = readdirSync(backupFolders(loc)[0]!);
    assert.ok(!names.includes('backup_redis.tar.zst'));
    for (const a of ARCHIVES.filter((x) => x !== 'redis')) assert.ok(names.includes(`backup_${a}.tar.zst`), a);
  });

  it('STANDIN_TRUNCATE_COMPONENT=crypt: exit 0, archive present but zstd -t fails', async () => {
    const loc = await freshLocation(tmp, 'loc-trunc');
    const r = await run(mc, ['backup', 'crypt', 'vmail'], { MAILCOW_BACKUP_LOCATION: loc, STANDIN_TRUNCATE_COMPONENT: 'crypt' });
    assert.equal(r.code, 0);
    const folder = backupFolders(loc)[0]!;
    assert.ok(statSync(path.join(folder, 'backup_crypt.tar.zst')).size > 0);
    assert.notEqual(spawnSync('zstd', ['-t', '-q', path.join(folder, 'backup_crypt.tar.zst')]).status, 0);
    assert.equal(spawnSync('zstd', ['-t', '-q', path.join(folder, 'backup_vmail.tar.zst')]).status, 0);
    assert.deepEqual(readdirSync(folder).filter((n) => n.startsWith('backup_')).sort(), ['backup_crypt.tar.zst', 'backup_vmail.tar.zst']);
  });

  it('STANDIN_NO_DOCKER=1: exit 1 with docker-not-found message', async () => {
    const loc = await freshLocation(tmp, 'loc-nodocker');
    const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc, STANDIN_NO_DOCKER: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot find docker in local PATH/);
  });

  it('--delete-days removes old mailcow-* folders by mtime, keeps new ones', async () => {
    const loc = await freshLocation(tmp, 'loc-delete');
    const old = path.join(loc, 'mailcow-2020-01-01-00-00-00');
    const recent = path.join(loc, 'mailcow-2020-01-02-00-00-00');
    for (const d of [old, recent]) await fsp.mkdir(d);
    const tenDaysAgo = Date.now() / 1000 - 10 * 86400;
    await fsp.utimes(old, tenDaysAgo, tenDaysAgo);
    const r = await run(mc, ['backup', 'crypt', '--delete-days', '3'], { MAILCOW_BACKUP_LOCATION: loc });
    assert.equal(r.code, 0);
    const left = readdirSync(loc);
    assert.ok(!left.includes('mailcow-2020-01-01-00-00-00'));
    assert.ok(left.includes('mailcow-2020-01-02-00-00-00'));
    assert.equal(left.length, 2);
  });
});

describe('the fake docker: mailcow\'s dump container', () => {
  const docker = (args: string[]) => fakeDocker(mc.path, args);
  const CONFLICT = /^docker: Error response from daemon: Conflict\. The container name "\/mailcow-backup" is already in use by container "[0-9a-f]{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\.$/m;
  const listed = () => docker(['ps', '-a', '--filter', 'name=^mailcow-backup$', '--format', '{{.ID}}\t{{.State}}\t{{.Names}}']).stdout.trim();
  /** Runs, and is not a zombie that its new parent has yet to reap. */
  const alive = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  };

  it('a named container outlives its killed CLI; a second run --name fails with exit 125; inspect and rm -f work as docker\'s', async () => {
    const loc = await freshLocation(tmp, 'loc-manual');
    const cli = await startDumpContainer(mc.path, loc);
    const [id, state, name] = listed().split('\t');
    assert.equal(state, 'running');
    assert.equal(name, 'mailcow-backup');
    assert.match(id!, /^[0-9a-f]{12}$/);
    const [info] = JSON.parse(docker(['inspect', 'mailcow-backup']).stdout) as { Id: string; Name: string; State: { Status: string; Pid: number; StartedAt: string }; Mounts: { Source: string; Destination: string }[] }[];
    assert.equal(info!.Name, '/mailcow-backup');
    assert.ok(info!.Id.startsWith(id!));
    assert.ok(Date.parse(info!.State.StartedAt) > Date.now() - 600_000);
    assert.deepEqual(info!.Mounts.map((m) => [m.Source, m.Destination]), [[loc, '/backup']]);
    // The CLI dies (SIGKILL): the container, under the "daemon", runs on.
    const gone = new Promise((r) => cli.on('exit', r));
    cli.kill('SIGKILL');
    await gone;
    assert.equal(listed(), `${id}\trunning\tmailcow-backup`);
    assert.ok(alive(info!.State.Pid), 'the container process runs on');
    const second = docker(['run', '--name', 'mailcow-backup', '--rm', 'ghcr.io/mailcow/backup:latest', 'true']);
    assert.equal(second.status, 125);
    assert.match(second.stderr, CONFLICT);
    assert.ok(second.stderr.includes(info!.Id));
    // rm without -f refuses a running container; rm -f kills and removes it.
    assert.equal(docker(['rm', 'mailcow-backup']).status, 1);
    const rm = docker(['rm', '-f', 'mailcow-backup']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.equal(listed(), '');
    assert.ok(!alive(info!.State.Pid), 'rm -f killed the container process');
    assert.match(docker(['inspect', 'mailcow-backup']).stderr, /No such object: mailcow-backup/);
    assert.equal(docker(['run', '--name', 'mailcow-backup', '--rm', 'ghcr.io/mailcow/backup:latest', 'true']).status, 0);
    assert.equal(listed(), '', '--rm removed it when it ended');
  });

  it('docker stop ends a --rm container (SIGTERM) and the daemon removes it; the attached CLI returns; exec into it fails once it is gone', async () => {
    const cli = await startDumpContainer(mc.path, await freshLocation(tmp, 'loc-stop'));
    const cliExit = new Promise<number | null>((r) => cli.on('exit', (code) => r(code)));
    try {
      const [id] = listed().split('\t');
      const ex = docker(['exec', 'mailcow-backup', 'sh', '-c', 'echo inside']);
      assert.deepEqual([ex.status, ex.stdout], [0, 'inside\n'], ex.stderr);
      const stop = docker(['stop', '-t', '5', 'mailcow-backup']);
      assert.deepEqual([stop.status, stop.stdout], [0, 'mailcow-backup\n'], stop.stderr);
      assert.equal(listed(), '', '--rm: gone once stopped');
      assert.notEqual(await cliExit, 0, 'the attached docker run ends with its container');
      assert.match(docker(['exec', id!, 'true']).stderr, new RegExp(`No such container: ${id}`));
    } finally {
      docker(['rm', '-f', 'mailcow-backup']);
    }
  });

  it('backup runs each component in docker run --name mailcow-backup: a leftover container fails every one, yet exit 0', async () => {
    const cli = await startDumpContainer(mc.path, await freshLocation(tmp, 'loc-manual2'));
    try {
      const loc = await freshLocation(tmp, 'loc-conflict');
      const r = await run(mc, ['backup', 'crypt', 'redis', 'mysql'], { MAILCOW_BACKUP_LOCATION: loc });
      assert.equal(r.code, 0, 'the real script does not check docker run');
      assert.equal(r.stderr.split('\n').filter((l) => CONFLICT.test(l)).length, 3, r.stderr);
      assert.deepEqual(readdirSync(backupFolders(loc)[0]!).filter((n) => n.startsWith('backup_')), []);
    } finally {
      docker(['rm', '-f', 'mailcow-backup']);
      cli.kill('SIGKILL');
    }
  });

  it('STANDIN_HANG_COMPONENT=crypt: its container writes the archive, then never ends; killing the script leaves it running', async () => {
    const loc = await freshLocation(tmp, 'loc-hang');
    const script = spawn(mc.script, ['backup', 'crypt', 'redis'], { env: { ...process.env, ...dockerEnv(mc.path), MAILCOW_BACKUP_LOCATION: loc, STANDIN_HANG_COMPONENT: 'crypt' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    try {
      await new Promise<void>((resolve, reject) => {
        let err = '';
        script.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d).includes('standin: the container of crypt hangs now') && resolve());
        script.on('exit', () => reject(new Error(`the script ended: ${err}`)));
      });
      const exited = new Promise((r) => script.on('exit', r));
      process.kill(-script.pid!, 'SIGKILL');
      await exited;
      assert.match(listed(), /\trunning\tmailcow-backup$/);
      assert.equal(spawnSync('zstd', ['-t', '-q', path.join(backupFolders(loc)[0]!, 'backup_crypt.tar.zst')]).status, 0);
    } finally {
      docker(['rm', '-f', 'mailcow-backup']);
    }
    assert.equal(listed(), '');
  });
});

describe("the fake docker: compose services' state", () => {
  const docker = (args: string[]) => fakeDocker(mc.path, args);
  const running = () => docker(['compose', 'ps', '--format', 'table {{.Name}} {{.Status}}']).stdout.split('\n').slice(1).filter(Boolean);

  it('stop takes a service out of `compose ps` (ps --all shows it exited), exec into it fails, start brings it back', () => {
    assert.equal(running().length, 6);
    assert.equal(docker(['compose', 'stop', 'dovecot-mailcow']).status, 0);
    assert.ok(!running().some((l) => l.includes('dovecot-mailcow')), running().join('\n'));
    assert.match(docker(['compose', 'ps', '--all']).stdout, /-dovecot-mailcow-1 Exited \(0\)/);
    const ex = docker(['compose', 'exec', '-T', 'dovecot-mailcow', 'doveadm', 'force-resync', '-A', '*']);
    assert.equal(ex.status, 1);
    assert.match(ex.stderr, /service "dovecot-mailcow" is not running/);
    assert.equal(docker(['compose', 'start', 'dovecot-mailcow']).status, 0);
    assert.equal(running().length, 6);
    assert.equal(docker(['compose', 'exec', '-T', 'dovecot-mailcow', 'true']).status, 0);
    // down/up: everything, as the SQL restore does it
    docker(['compose', 'down']);
    assert.deepEqual(running(), []);
    docker(['compose', 'up', '-d']);
    assert.equal(running().length, 6);
  });

  it("plain docker stop/start/kill/exec by the id `docker ps -qf name=…` gives, as mailcow's restore script calls them", () => {
    const idOf = (all: boolean) => docker(['ps', all ? '-aqf' : '-qf', 'name=dovecot-mailcow']).stdout.trim();
    const id = idOf(false);
    assert.match(id, /^[0-9a-f]{12}$/);
    try {
      assert.deepEqual([docker(['stop', id]).status, docker(['stop', id]).stdout], [0, `${id}\n`]);
      assert.equal(idOf(false), '', 'a stopped container is not in `docker ps`');
      assert.equal(idOf(true), id, '`docker ps -a` still has it');
      assert.ok(!running().some((l) => l.includes('dovecot-mailcow')), 'compose sees it stopped too');
      const ex = docker(['exec', id, 'doveadm', 'force-resync', '-A', '*']);
      assert.equal(ex.status, 1);
      assert.match(ex.stderr, new RegExp(`^Error response from daemon: container ${id}[0-9a-f]{52} is not running$`, 'm'));
      const kill = docker(['kill', id]);
      assert.equal(kill.status, 1);
      assert.match(kill.stderr, /is not running/);
      // What the real script runs when the container it wants is not running: no id, docker's usage error.
      const none = docker(['stop']);
      assert.equal(none.status, 1);
      assert.match(none.stderr, /'docker stop' requires at least 1 argument/);
      assert.match(docker(['start', 'no-such-container']).stderr, /^Error response from daemon: No such container: no-such-container$/m);
      assert.equal(docker(['start', id]).status, 0);
      assert.equal(idOf(false), id);
      assert.equal(docker(['exec', id, 'doveadm', 'force-resync', '-A', '*']).status, 0);
      assert.equal(docker(['kill', id]).status, 0);
      assert.equal(idOf(false), '');
    } finally {
      docker(['start', id]);
    }
    assert.equal(running().length, 6);
  });
});

describe('stand-in restore (interactive, driven by label)', () => {
  let loc: string;
  before(async () => {
    loc = await freshLocation(tmp, 'loc-restore');
    const r = await run(mc, ['backup', 'all'], { MAILCOW_BACKUP_LOCATION: loc });
    assert.equal(r.code, 0);
  });

  it('restoring "Mail directory (/var/vmail)" puts a deleted message back', async () => {
    const vmail = mc.volume('vmail');
    const before1 = await treeHashes(vmail);
    const victim = [...before1.keys()].find((k) => k.includes(`${path.sep}cur${path.sep}`))!;
    await fsp.rm(path.join(vmail, victim));
    await fsp.writeFile(path.join(vmail, 'stray-file'), 'not in the backup');
    const since = (await mc.readActions()).length;
    const r = await driveRestore(mc, loc, { label: 'Mail directory (/var/vmail)', resync: true });
    assert.equal(r.timedOut, false);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await treeHashes(vmail), before1);
    const st = statSync(path.join(vmail, victim));
    if (process.getuid?.() === 0) assert.equal(st.uid, 5000);
    // As mailcow's script does it: dovecot (and its watchdog) stopped around the extraction, the
    // resync run in dovecot once it is started again, and both running at the end.
    const actions = (await mc.readActions()).slice(since);
    const order = ['docker stop watchdog-mailcow', 'docker stop dovecot-mailcow', 'restore vmail', 'docker start dovecot-mailcow', 'docker exec dovecot-mailcow doveadm force-resync -A *', 'docker start watchdog-mailcow'];
    assert.deepEqual(actions.filter((a) => order.includes(a)), order, actions.join('|'));
    assert.deepEqual(notRunning(), []);
    assert.deepEqual(new Set(r.datasets), new Set(['all', 'Mail directory (/var/vmail)', 'Crypt data', 'Redis DB', 'Rspamd data', 'Postfix data', 'SQL DB']));
  });

  it('a damaged archive: tar fails, and the script carries on and starts what it stopped, as the real one does', async () => {
    const loc4 = await freshLocation(tmp, 'loc-damaged');
    assert.equal((await run(mc, ['backup', 'crypt'], { MAILCOW_BACKUP_LOCATION: loc4 })).code, 0);
    const archive = path.join(backupFolders(loc4)[0]!, 'backup_crypt.tar.zst');
    await fsp.truncate(archive, Math.floor(statSync(archive).size / 2));
    const since = (await mc.readActions()).length;
    const r = await driveRestore(mc, loc4, { label: 'Crypt data' });
    assert.equal(r.code, 0, 'its exit status says nothing');
    assert.match(r.stderr, /tar: .*(Unexpected EOF|Error)/);
    const actions = (await mc.readActions()).slice(since).filter((a) => a.startsWith('docker '));
    assert.deepEqual(actions, ['docker stop watchdog-mailcow', 'docker stop dovecot-mailcow', 'docker start dovecot-mailcow', 'docker start watchdog-mailcow']);
    assert.deepEqual(notRunning(), []);
  });

  it('a restore killed during the extraction leaves what it stopped stopped (dovecot, watchdog) and its container running, as the real script would', async () => {
    const script = spawn(mc.script, ['restore'], { env: { ...dockerEnv(mc.path), MAILCOW_BACKUP_LOCATION: loc, STANDIN_DATASET_ORDER: 'sorted', STANDIN_HANG_COMPONENT: 'crypt' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const exited = new Promise((r) => script.on('exit', r));
    try {
      let out = '';
      script.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (/Select a restore point: $/.test(out)) script.stdin!.write('1\n');
        // sorted: 0 all, then backup_crypt… first
        else if (/Select a dataset to restore: $/.test(out)) script.stdin!.write(`${/\[ (\d+) \] - Crypt data/.exec(out)![1]}\n`);
      });
      await new Promise<void>((resolve, reject) => {
        let err = '';
        script.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d).includes('standin: the container of crypt hangs now') && resolve());
        void exited.then(() => reject(new Error(`the script ended: ${out}${err}`)));
      });
      // Killed as a terminal's Ctrl-C or a stopped unit kills it: the whole process group.
      process.kill(-script.pid!, 'SIGKILL');
      await exited;
      assert.deepEqual(notRunning(), ['dovecot-mailcow', 'watchdog-mailcow']);
      const ex = fakeDocker(mc.path, ['exec', fakeDocker(mc.path, ['ps', '-aqf', 'name=dovecot-mailcow']).stdout.trim(), 'doveadm', 'force-resync', '-A', '*']);
      assert.equal(ex.status, 1);
      assert.match(ex.stderr, /^Error response from daemon: container [0-9a-f]{64} is not running$/m);
      assert.match(fakeDocker(mc.path, ['ps', '--filter', 'name=^mailcow-backup$', '--format', '{{.State}}']).stdout, /^running$/m);
    } finally {
      fakeDocker(mc.path, ['rm', '-f', 'mailcow-backup']);
      fakeDocker(mc.path, ['compose', 'start', 'dovecot-mailcow', 'watchdog-mailcow']);
    }
  });

  it('restoring "SQL DB" asks to proceed and rewrites DB parameters in the live mailcow.conf', async () => {
    const confFile = path.join(mc.path, 'mailcow.conf');
    const original = await fsp.readFile(confFile, 'utf8');
    await fsp.writeFile(confFile, original.replace(/^DBPASS=.*$/m, 'DBPASS=changedAfterBackup').replace(/^DBROOT=.*$/m, 'DBROOT=otherRoot'));
    await fsp.rm(path.join(mc.volume('mysql'), 'ibdata1'));
    const r = await driveRestore(mc, loc, { label: 'SQL DB', proceedSql: true });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const live = await mc.readConf();
    assert.equal(live.DBPASS, mc.conf.DBPASS);
    assert.equal(live.DBROOT, mc.conf.DBROOT);
    assert.equal(live.REDISPASS, mc.conf.REDISPASS);
    assert.ok(statSync(path.join(mc.volume('mysql'), 'ibdata1')).size > 0);
    const actions = await mc.readActions();
    assert.ok(actions.includes('docker compose down') && actions.includes('docker compose up -d') && actions.includes('restore mysql'));
  });

  it('the dataset menu order is random between runs (a driver must pick by label)', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 6 && orders.size < 2; i++) {
      const r = await driveRestore(mc, loc, { label: undefined });
      assert.equal(r.timedOut, false, 'stopped by the driver at the dataset prompt');
      assert.equal(r.datasets[0], 'all');
      assert.equal(r.datasets.length, 7);
      orders.add(r.datasets.join('|'));
    }
    assert.ok(orders.size >= 2, `saw ${orders.size} distinct orders`);
  });

  it('rspamd from another architecture is listed as NaN and cannot be picked', async () => {
    const loc2 = await freshLocation(tmp, 'loc-arch');
    assert.equal((await run(mc, ['backup', 'rspamd', 'crypt'], { MAILCOW_BACKUP_LOCATION: loc2, STANDIN_ARCH: 'aarch64' })).code, 0);
    const folder = backupFolders(loc2)[0]!;
    assert.ok(readdirSync(folder).includes('.aarch64'));
    const r = await driveRestore(mc, loc2, { label: 'Crypt data' });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /\[ NaN \] - Rspamd data \(incompatible Arch, cannot restore it\)/);
    assert.ok(!r.answers.includes('NaN'));
    assert.deepEqual(new Set(r.datasets.filter((d) => d !== 'all')), new Set(['Crypt data', 'Rspamd data (incompatible Arch, cannot restore it)']));
  });

  it("the restore driver stops a script stuck at a question it does not know, on its idle timeout, before anything is restored", async () => {
    const crypt = await treeHashes(mc.volume('crypt'));
    const actions = (await mc.readActions()).length;
    const log = createLogger({ console: 'silent' });
    const t0 = Date.now();
    await assert.rejects(
      runMailcowRestore(log, {
        mailcowPath: mc.path,
        location: loc,
        folder: backupFolders(loc)[0]!,
        component: 'crypt',
        threads: 1,
        idleTimeoutMs: 1500,
        env: { ...process.env, ...dockerEnv(mc.path), STANDIN_PROMPTS: 'tty', STANDIN_EXTRA_PROMPT: 'Type the new restore password:' },
      }),
      (e: Error) => /printed nothing for 2 s \(waiting for an answer the tool does not know\?\) and was stopped/.test(e.message),
    );
    // It returned at all: the script (which holds the output pipes while it waits) is gone.
    assert.ok(Date.now() - t0 < 15_000);
    assert.deepEqual(await treeHashes(mc.volume('crypt')), crypt, 'crypt untouched');
    assert.ok(!(await mc.readActions()).slice(actions).some((a) => a.startsWith('restore ') || a.startsWith('docker stop ')), 'nothing stopped or restored');
    assert.deepEqual(notRunning(), []);
  });

  it('accepts .tar.gz archives from older backups', async () => {
    const loc3 = await freshLocation(tmp, 'loc-gz');
    const folder = path.join(loc3, 'mailcow-2023-05-01-03-00-00');
    await fsp.mkdir(folder, { mode: 0o755 });
    await fsp.copyFile(path.join(mc.path, 'mailcow.conf'), path.join(folder, 'mailcow.conf'));
    await fsp.writeFile(path.join(folder, `.${spawnSync('uname', ['-m']).stdout.toString().trim()}`), '');
    // As mailcow wrote them: absolute member names (tar -P), /postfix/...
    assert.equal(spawnSync('tar', ['-P', '--transform', 's,^\\.,/postfix,', '-czf', path.join(folder, 'backup_postfix.tar.gz'), '-C', mc.volume('postfix'), '.']).status, 0);
    const want = await treeHashes(mc.volume('postfix'));
    await fsp.rm(path.join(mc.volume('postfix'), 'sasl_passwd.db'));
    const r = await driveRestore(mc, loc3, { label: 'Postfix data' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await treeHashes(mc.volume('postfix')), want);
  });

  it('EOF at the restore-point prompt: the script waits forever (its driver must stop it)', async () => {
    const r = await run(mc, ['restore'], { MAILCOW_BACKUP_LOCATION: loc }, '', 2_000);
    assert.equal(r.timedOut, true, 'end of input does not end the restore-point loop');
    assert.match(r.stdout, /\[ 1 \] - .*mailcow-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\/\n/);
    assert.match(r.stdout, /Select a restore point: /);
  });
});

describe('maildir fixture', () => {
  it('is deterministic for a seed and has the awkward folder names', async () => {
    const a = path.join(tmp, 'md-a');
    const b = path.join(tmp, 'md-b');
    const ra = await generateMaildir(a, { seed: 42, totalBytes: 1536 * 1024, domains: 2, usersPerDomain: 2 });
    const rb = await generateMaildir(b, { seed: 42, totalBytes: 1536 * 1024, domains: 2, usersPerDomain: 2 });
    assert.deepEqual(ra, rb);
    const ha = await treeHashes(a);
    assert.deepEqual(ha, await treeHashes(b));
    assert.deepEqual(ra.users, ['alice@example.com', 'bob@example.com', 'alice@example.org', 'bob@example.org']);
    const keys = [...ha.keys()];
    assert.equal(keys.filter((k) => ha.get(k) !== 'dir').length, ra.files);
    const total = keys.filter((k) => ha.get(k) !== 'dir').reduce((s, k) => s + statSync(path.join(a, k)).size, 0);
    assert.equal(total, ra.bytes);
    assert.ok(ra.bytes >= 1536 * 1024 && ra.bytes < 1536 * 1024 * 1.2, `bytes ${ra.bytes}`);
    const md = path.join('example.com', 'alice', 'Maildir');
    for (const f of ['.Sent', '.Drafts', '.Trash', '.Archive.2024', '.Entw&APw-rfe', '.Sent Items']) {
      for (const s of ['cur', 'new', 'tmp']) assert.equal(ha.get(path.join(md, f, s)), 'dir', `${f}/${s}`);
    }
    for (const f of ['dovecot-uidlist', 'dovecot-keywords', 'maildirsize', 'subscriptions']) assert.ok(ha.has(path.join(md, f)), f);
    const cur = keys.filter((k) => k.includes(`${path.sep}cur${path.sep}`));
    const nw = keys.filter((k) => k.includes(`${path.sep}new${path.sep}`));
    assert.ok(cur.length > 20);
    for (const k of cur) assert.match(path.basename(k), /^\d{10}\.M\d+P\d+\.[0-9a-f]{12},S=\d+,W=\d+:2,[A-Za-z]*$/);
    for (const k of nw) assert.match(path.basename(k), /^\d{10}\.M\d+P\d+\.[0-9a-f]{12},S=\d+,W=\d+$/);
    // S= is the real size; bodies start with an RFC 5322 header block
    const one = path.join(a, cur[0]!);
    assert.equal(statSync(one).size, Number(/,S=(\d+)/.exec(one)![1]));
    assert.match((await fsp.readFile(one)).subarray(0, 400).toString('latin1'), /^Return-Path: <[^>]+>\nDelivered-To: /);
    if (process.getuid?.() === 0) assert.equal(statSync(one).uid, 5000);
    // different seed -> different tree
    const c = path.join(tmp, 'md-c');
    await generateMaildir(c, { seed: 43, totalBytes: 512 * 1024, domains: 1, usersPerDomain: 1, plainText: true });
    const txt = (await treeHashes(c));
    const some = [...txt.keys()].find((k) => k.includes(`${path.sep}cur${path.sep}`))!;
    assert.match(await fsp.readFile(path.join(c, some), 'utf8'), /Subject: .*\n[\s\S]*\n\n[a-z]+ [a-z]+/);
  });

  it('mutateMaildir changes about the asked fractions, deterministically, and keeps uidlists consistent', async () => {
    const mk = async (name: string) => {
      const dir = path.join(tmp, name);
      await generateMaildir(dir, { seed: 7, totalBytes: 3 * 1024 * 1024, domains: 1, usersPerDomain: 3 });
      return dir;
    };
    const a = await mk('mut-a');
    const b = await mk('mut-b');
    const msgs = (h: Map<string, string>) => [...h.keys()].filter((k) => /(^|\/)(cur|new)\/[^/]+$/.test(k));
    const before1 = await treeHashes(a);
    const n = msgs(before1).length;
    const opts = { seed: 3, newFraction: 0.1, deleteFraction: 0.05, renameFraction: 0.2 };
    const ra = await mutateMaildir(a, opts);
    const rb = await mutateMaildir(b, opts);
    assert.deepEqual(ra, rb);
    assert.deepEqual(await treeHashes(a), await treeHashes(b));
    assert.equal(ra.deleted, Math.round(n * 0.05));
    assert.equal(ra.renamed, Math.round(n * 0.2));
    assert.equal(ra.newFiles, Math.round(n * 0.1));
    assert.ok(ra.newBytes > 0 && ra.renamedBytes > 0);
    const after1 = await treeHashes(a);
    const afterMsgs = msgs(after1);
    assert.equal(afterMsgs.length, n - ra.deleted + ra.newFiles);
    const beforeSet = new Set(msgs(before1));
    const unchanged = afterMsgs.filter((k) => beforeSet.has(k)).length;
    assert.equal(unchanged, n - ra.deleted - ra.renamed);
    assert.ok(afterMsgs.some((k) => /:2,RS$/.test(k)), 'some S -> RS renames');
    // every message is in its folder's dovecot-uidlist, exactly once
    const folders = new Set(afterMsgs.map((k) => path.dirname(path.dirname(k))));
    for (const f of folders) {
      const ul = (await fsp.readFile(path.join(a, f, 'dovecot-uidlist'), 'utf8')).trim().split('\n');
      assert.match(ul[0]!, /^3 V\d+ N\d+ G[0-9a-f]{32}$/);
      const bases = ul.slice(1).map((l) => l.slice(l.indexOf(':') + 1));
      const uids = ul.slice(1).map((l) => Number(l.split(' ')[0]));
      assert.equal(new Set(uids).size, uids.length, 'uids unique');
      const nextUid = Number(/ N(\d+)/.exec(ul[0]!)![1]);
      assert.ok(uids.every((u) => u < nextUid));
      const present = afterMsgs.filter((k) => path.dirname(path.dirname(k)) === f).map((k) => path.basename(k).split(':2,')[0]!);
      assert.deepEqual(new Set(bases), new Set(present), `uidlist of ${f}`);
    }
  });
});
