// Driving a script that waits forever (mailcow's restore script asking what the tool cannot
// answer, or its `docker run -i` stuck): the idle timeout stops the script AND the children that
// hold its output, so the restore ends with one line instead of waiting for ever.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { runInteractive } from '../src/adapters/interactive.js';
import { UserError } from '../src/errors.js';

const running = (marker: string) => {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
};

test('the idle timeout ends a hung script and the child that holds its output (own process group)', { timeout: 60_000 }, async () => {
  const marker = `mcb-hung-child-${process.pid}`;
  // The child inherits stdout and outlives a SIGTERM to bash alone, as `docker run -i` does.
  const script = `echo 'Select a dataset to restore:'; bash -c 'exec -a ${marker} sleep 300' & wait`;
  const t0 = Date.now();
  await assert.rejects(
    runInteractive('bash', ['-c', script], { what: "mailcow's restore script", ownProcessGroup: true, idleTimeoutMs: 1000, onLine: () => undefined }),
    (e: unknown) => e instanceof UserError && /printed nothing for 1 s .* and was stopped/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
  for (let i = 0; i < 100 && running(marker); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(running(marker), false, 'the child that held the output is gone');
});
