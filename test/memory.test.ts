// The run's memory watch (src/adapters/memory.ts): with --expose-gc, as the service runs the
// tool, garbage buffers are collected once they have grown by 16 MiB instead of piling up until
// V8 gets to them; without the flag nothing changes. A real node process each time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

const memory = fileURLToPath(new URL('../src/adapters/memory.js', import.meta.url));

/** Makes 300 MiB of garbage 1 MiB at a time as the index's folders are loaded and dropped, checking memory before each as the spill does. */
async function garbage(flags: string[]): Promise<{ maxMiB: number; collections: number }> {
  const program = `
    const { watchMemory, checkMemory, memoryCollections } = await import(${JSON.stringify(memory)});
    const stop = watchMemory();
    let max = 0;
    for (let i = 0; i < 300; i++) {
      checkMemory();
      Buffer.allocUnsafeSlow(1 << 20).fill(1);
      max = Math.max(max, process.memoryUsage().arrayBuffers);
      if (i % 4 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    stop();
    console.log(JSON.stringify({ maxMiB: max / 1048576, collections: memoryCollections() }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--max-semi-space-size=1', '--optimize-for-size', ...flags, '--input-type=module', '-e', program]);
  return JSON.parse(stdout) as { maxMiB: number; collections: number };
}

test('with --expose-gc, garbage buffers are collected after 16 MiB; without it, nothing is asked of the collector', async () => {
  const watched = await garbage(['--expose-gc']);
  assert.ok(watched.collections >= 10, `collections: ${watched.collections}`);
  const plain = await garbage([]);
  assert.equal(plain.collections, 0);
  // What the collections buy: fewer buffers waiting at the peak than node's own pace leaves.
  assert.ok(watched.maxMiB <= plain.maxMiB, `with the watch ${watched.maxMiB} MiB, without ${plain.maxMiB} MiB`);
});
