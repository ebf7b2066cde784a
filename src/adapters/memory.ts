// Keeps the run's garbage from setting its peak memory (issue 19: < 150 MB at a million
// messages). With the service's small young generation, V8 collects the old generation and the
// array buffers (the mail index's folders, gzip's output, up to ~16 MB each) only after they have
// grown by tens of MB: measured at 1M messages, 59 MiB of array buffers at the manifest step's
// peak and 61 MiB of heap at verify's, most of it garbage. When what the heap and the buffers
// hold has grown by GROWTH since the last full collection, a full collection is asked for; on a
// heap this size it takes milliseconds.
//
// Only with `--expose-gc` (the service's ExecStart): without it (tests, a manual run) nothing
// is collected and memory behaves as node's defaults.

// 8 MiB: at 16 the walk reading the hash cache at 1M messages peaked ~20 MB higher, for a
// third of the collections (each a few ms on a heap this size).
const GROWTH = 8 << 20;
const CHECK_MS = 100;

const gc = (globalThis as { gc?: () => void }).gc;
let after = 0;
let collections = 0;

const held = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/**
 * Collects if memory grew by GROWTH since its lowest point after the last collection. Called
 * where big buffers are made (the index's folders) and in long synchronous stretches (the walk),
 * where the timer cannot run.
 */
export function checkMemory(growth = GROWTH): void {
  if (!gc) return;
  // Growth is counted from the lowest point since, which V8's own collections lower too: counted
  // from our last collection only, verify's heap at 1M messages still reached 61 MiB used.
  const now = held();
  if (now < after) after = now;
  if (now < after + growth) return;
  gc();
  collections++;
  after = held();
}

/** Checks every CHECK_MS while the event loop turns; returns the stop function. */
export function watchMemory(): () => void {
  if (!gc) return () => undefined;
  after = held();
  const timer = setInterval(() => checkMemory(), CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Full collections asked for so far (the run's debug line). */
export function memoryCollections(): number {
  return collections;
}

