// The run lock: a run killed at any instant (even between creating the lock and recording itself)
// must not block the next run, and a live run must never be taken over.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { acquireLock } from '../src/adapters/lock.js';
import { createLogger } from '../src/adapters/logger.js';
import { UserError } from '../src/errors.js';

const log = createLogger({ console: 'silent' });
let dir: string;

/** A process that has surely exited: its pid is free (until reused, which a test cannot wait on). */
async function deadPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}

describe('run lock', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcb-lock-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a lock left by a run killed before it recorded itself is taken over at once', async () => {
    const state = join(dir, 'a');
    mkdirSync(join(state, 'backup.lock'), { recursive: true });
    mkdirSync(join(state, 'backup.lock.claims'));
    const dead = await deadPid();
    writeFileSync(join(state, 'backup.lock.claims', String(dead)), '{}');
    const held = await acquireLock(state, 24, log);
    assert.match(held.tookOver ?? '', /died before it could record its process/);
    assert.deepEqual(readdirSync(join(state, 'backup.lock.claims')), [String(process.pid)], 'the dead claim was swept');
    await held.release();
    assert.equal(existsSync(join(state, 'backup.lock')), false);
    assert.equal(existsSync(join(state, 'backup.lock.owner.json')), false);
    assert.deepEqual(readdirSync(join(state, 'backup.lock.claims')), []);
  });

  test('a lock whose claimant is alive but not yet recorded is refused (exit 75 class), and left alone', async () => {
    const state = join(dir, 'b');
    mkdirSync(join(state, 'backup.lock'), { recursive: true });
    mkdirSync(join(state, 'backup.lock.claims'));
    const sleeper = spawn('sleep', ['30']);
    try {
      writeFileSync(join(state, 'backup.lock.claims', String(sleeper.pid)), '{}');
      await assert.rejects(acquireLock(state, 24, log), (e: unknown) => e instanceof UserError && e.kind === 'locked' && e.message.includes(`process ${sleeper.pid}, starting`));
      assert.equal(existsSync(join(state, 'backup.lock')), true);
      assert.deepEqual(readdirSync(join(state, 'backup.lock.claims')), [String(sleeper.pid)], 'the refused run withdrew its claim');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  test('a lock whose recorded owner is dead is taken over; one whose owner lives is not', async () => {
    const state = join(dir, 'c');
    mkdirSync(join(state, 'backup.lock'), { recursive: true });
    const dead = await deadPid();
    writeFileSync(join(state, 'backup.lock.owner.json'), JSON.stringify({ pid: dead, startedAt: new Date().toISOString(), host: '' }));
    const held = await acquireLock(state, 24, log);
    assert.match(held.tookOver ?? '', new RegExp(`run ${dead} .* no longer exists`));
    await assert.rejects(acquireLock(state, 24, log), (e: unknown) => e instanceof UserError && e.message.includes(`process ${process.pid}, started`));
    await held.release();
    const again = await acquireLock(state, 24, log);
    assert.equal(again.tookOver, undefined);
    await again.release();
  });

  test('a lock older than LOCK_TIMEOUT_HOURS is taken over even though its owner lives; a younger one is not', async () => {
    const state = join(dir, 'timeout');
    mkdirSync(join(state, 'backup.lock'), { recursive: true });
    // A live owner (a hung run): only its age can free the lock.
    const hung = spawn('sleep', ['60']);
    try {
      const startedAt = new Date(Date.now() - 7 * 3_600_000).toISOString();
      writeFileSync(join(state, 'backup.lock.owner.json'), JSON.stringify({ pid: hung.pid, startedAt, host: '' }));
      await assert.rejects(acquireLock(state, 8, log), (e: unknown) => e instanceof UserError && e.kind === 'locked' && e.message.includes(`process ${hung.pid}, started ${startedAt}`), '7 h < 8 h: refused');
      assert.equal(existsSync(join(state, 'backup.lock')), true, 'the refused run left the lock alone');
      const held = await acquireLock(state, 6, log);
      assert.equal(held.tookOver, `the lock of run ${hung.pid} is 7.0 h old, more than LOCK_TIMEOUT_HOURS=6`);
      assert.equal(JSON.parse(readFileSync(join(state, 'backup.lock.owner.json'), 'utf8')).pid, process.pid, 'this run owns it now');
      await held.release();
    } finally {
      hung.kill('SIGKILL');
    }
  });

  test('release works once: called again after the next run took the lock, it leaves that lock alone', async () => {
    // The CLI releases in its finally what runBackup released already (lock-phase.ts).
    const state = join(dir, 'd');
    const first = await acquireLock(state, 24, log);
    await first.release();
    const next = await acquireLock(state, 24, log);
    await first.release();
    assert.equal(existsSync(join(state, 'backup.lock')), true);
    assert.equal(existsSync(join(state, 'backup.lock.owner.json')), true);
    assert.deepEqual(readdirSync(join(state, 'backup.lock.claims')), [String(process.pid)]);
    await next.release();
    assert.equal(existsSync(join(state, 'backup.lock')), false);
  });
});
