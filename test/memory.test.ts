// The run's memory watch (src/adapters/memory.ts): with --expose-gc, as the service runs the
// tool, growing garbage makes it ask for full collections; without the flag nothing changes.
// A real node process each time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

const memory = fileURLToPath(new URL('../src/adapters/memory.js', import.meta.url));

/** Makes 300 MiB of garbage 1 MiB at a time as the index's folders are loaded and dropped, checking memory before each as the spill does. */
async function garbage(flags: string[]): Promise<{ collections: number }> {
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
  return JSON.parse(stdout) as { collections: number };
}

test('with --expose-gc, garbage buffers make the watch ask for collections; without it, nothing is asked of the collector', async () => {
  // How many depends on when V8 collects by itself (a loaded machine: 3 in one CI run, 16 idle).
  const watched = await garbage(['--expose-gc']);
  assert.ok(watched.collections >= 1, `collections: ${watched.collections}`);
  const plain = await garbage([]);
  assert.equal(plain.collections, 0);
});
