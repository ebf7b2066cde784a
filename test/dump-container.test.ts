// mailcow's script dumps each component in `docker run --name mailcow-backup --rm`, a container
// under the docker daemon (here: the fake docker's registry, which outlives a killed CLI as
// docker's does). A run killed during the dump must not block every later run; a container that
// is not ours must be left alone, and the admin told which and how to remove it.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EXIT } from '../src/cli/exit-codes.js';
import { judgeDumpContainer } from '../src/plan/dump-container.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { backup, publishedOnBox, spawnBackup } from './support/cli.js';
import { docker, dumpContainer, startDumpContainer } from './support/docker.js';

let sb: Sandbox;
let dir: string;

const runDirs = () => (existsSync(join(dir, 'tmp')) ? readdirSync(join(dir, 'tmp')).filter((n) => n.startsWith('run-')) : []);
const status = () => JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as { warnings: string[]; exitCode: number };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-dump-container-'));
  sb = await createSandbox({ dir, mailBytes: 256 * 1024, seed: 41, strict: true });
});

after(async () => {
  docker(sb.mailcow.path, ['rm', '-f', 'mailcow-backup']);
  await sb?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

describe("mailcow's dump container", () => {
  test('a run SIGKILLed while its dump container runs: the next run removes the container, says so, and publishes', async () => {
    // The crypt container writes its archive, then hangs (as a tar on a stuck filesystem would).
    const killed = spawnBackup(['run', '--debug', '--config', sb.configPath], { ...sb.env, STANDIN_HANG_COMPONENT: 'crypt' });
    await killed.waitFor(/standin: the container of crypt hangs now/);
    process.kill(-killed.p.pid!, 'SIGKILL');
    await killed.exit;
    assert.match(dumpContainer(sb.mailcow.path), /\trunning$/, 'the container outlived the killed run, as under docker');

    try {
      const r = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const said = /removed the docker container mailcow-backup \([0-9a-f]{12}, running, started [^)]+\) that a dead run of this tool left behind \(it writes into \S+\/tmp\/run-\d+-\d+\/mailcow-[\d-]+, a folder of this tool's runs\), and its half-written dump/;
      assert.match(r.stderr, said, 'the log says what was removed');
      assert.ok(status().warnings.some((w) => said.test(w)), 'the report says it too');
      assert.equal(dumpContainer(sb.mailcow.path), '', 'the leftover container is gone');
      assert.deepEqual(runDirs(), [], "the dead run's half-written dump is gone");
      const [published] = await publishedOnBox(sb.box.root, sb.remotePath);
      assert.ok(published && existsSync(join(sb.box.root, sb.remotePath, published, 'archives', 'crypt.tar.json')), 'the backup was made, with crypt');
    } finally {
      // Whatever happened, the hanging container must not outlive the test (nor fail the next ones).
      docker(sb.mailcow.path, ['rm', '-f', 'mailcow-backup']);
    }
  });

  test("someone else's mailcow-backup container: the run stops before the dump with one line and exit 7, and leaves it alone", async () => {
    const manual = join(dir, 'manual');
    await mkdir(manual, { recursive: true });
    const cli = await startDumpContainer(sb.mailcow.path, manual);
    try {
      const before = dumpContainer(sb.mailcow.path);
      const published = await publishedOnBox(sb.box.root, sb.remotePath);
      const r = await backup(['run', '--debug', '--config', sb.configPath], sb.env);
      assert.equal(r.code, EXIT.dumpBusy, r.stderr.slice(-3000));
      const id = before.split('\t')[0]!;
      const line = new RegExp(
        `a docker container named mailcow-backup already exists \\(${id}, running, started 20\\d\\d-[^)]+, writing to ${manual}\\) and no run of this tool left it: .*nothing was dumped\\. .*if it is stale, remove it: docker rm -f mailcow-backup$`,
      );
      const lines = r.stderr.split('\n').filter((l) => line.test(l));
      assert.ok(lines.length >= 1, r.stderr.slice(-3000));
      assert.match(r.stdout, /backup FAILED in phase preflight \(exit 7\)/);
      assert.match(r.stderr, /^error: a docker container named mailcow-backup already exists/m);
      assert.doesNotMatch(r.stderr, /phase dump: start/, 'stopped before the dump');
      assert.doesNotMatch(r.stderr, /internal error|^\s+at /m);
      assert.equal(dumpContainer(sb.mailcow.path), before, 'the container was left alone');
      assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), published);
      assert.equal(status().exitCode, EXIT.dumpBusy);
    } finally {
      docker(sb.mailcow.path, ['rm', '-f', 'mailcow-backup']);
      cli.kill('SIGKILL');
    }
  });

  test("the container appears after preflight: the run reports docker's conflict line, not missing archives", async () => {
    const manual = join(dir, 'manual2');
    await mkdir(manual, { recursive: true });
    // The stand-in waits before each component: the admin starts mailcow's script meanwhile.
    const run = spawnBackup(['run', '--debug', '--config', sb.configPath], { ...sb.env, STANDIN_SLOW_SECONDS: '3' });
    let cli: ChildProcess | undefined;
    try {
      await run.waitFor(/phase dump: start/);
      cli = await startDumpContainer(sb.mailcow.path, manual);
      const ex = await run.exit;
      assert.equal(ex.code, EXIT.dumpBusy, run.stderr().slice(-3000));
      assert.match(
        run.stderr(),
        /^error: mailcow's backup script could not start its container: docker: Error response from daemon: Conflict\. The container name "\/mailcow-backup" is already in use by container "[0-9a-f]{64}"\..* remove it: docker rm -f mailcow-backup$/m,
      );
      assert.match(run.stderr(), /backup FAILED in phase dump \(exit 7\)/);
      assert.doesNotMatch(run.stderr(), /^error: .*is missing/m);
      assert.match(dumpContainer(sb.mailcow.path), /\trunning$/, "the admin's container is left alone");
      assert.deepEqual(runDirs(), []);
    } finally {
      docker(sb.mailcow.path, ['rm', '-f', 'mailcow-backup']);
      cli?.kill('SIGKILL');
    }
  });
});

describe('whose container it is (the plan)', () => {
  const ev = { tempDir: '/var/tmp/mcb', runDirPrefix: 'run-' };
  const c = (backupSource?: string) => ({ id: 'f55435a14df3', state: 'exited', backupSource });
  test('one writing into a run folder of this tool is ours; one writing elsewhere is not, whatever our records say', () => {
    assert.equal(judgeDumpContainer(c('/var/tmp/mcb/run-123-456/mailcow-2026-12-05-03-00-00'), ev).ours, true);
    const dead = { ...ev, tookOver: 'the lock of run 123 was left by a process that no longer exists', deadDump: { pid: 123, startedAt: '2026-12-05T03:00:00Z' } };
    assert.equal(judgeDumpContainer(c('/root/manual/mailcow-2026-12-05-03-00-00'), dead).ours, false);
    assert.equal(judgeDumpContainer(c('/var/tmp/mcb-other/run-1/x'), dead).ours, false, 'a prefix of the folder name is not the folder');
    assert.equal(judgeDumpContainer(c(''), dead).ours, false, 'no /backup mount: not a container of mailcow\'s script');
  });
  test('when docker does not say where it writes, our records decide', () => {
    assert.deepEqual(judgeDumpContainer(c(), { ...ev, deadDump: { pid: 123, startedAt: '2026-12-05T03:00:00Z' } }), { ours: true, why: 'run 123 (started 2026-12-05T03:00:00Z) died during its dump' });
    assert.equal(judgeDumpContainer(c(), { ...ev, tookOver: 'the lock of run 123 was left by a process that no longer exists' }).ours, true);
    assert.equal(judgeDumpContainer(c(), ev).ours, false);
  });
});
