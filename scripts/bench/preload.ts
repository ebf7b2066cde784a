// Loaded with `node --import` in front of the tool by the benchmark only (the service never
// loads it): on exit it writes the tool process's own resource usage (peak RSS, CPU incl. its
// worker threads) to $BENCH_RUSAGE_FILE, so the tool can be told apart from its children, and
// where the memory was at the moment of the peak (V8 heap, buffers outside it), sampled.
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_RUSAGE_FILE;
if (out) {
  let peak: NodeJS.MemoryUsage | undefined;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    if (!peak || m.rss > peak.rss) peak = m;
  }, 20);
  timer.unref();
  process.on('exit', () => {
    try {
      const r = process.resourceUsage();
      const mib = (n: number | undefined) => (n === undefined ? undefined : Math.round((n / 1048576) * 10) / 10);
      const atPeak = peak && { rssMiB: mib(peak.rss), heapTotalMiB: mib(peak.heapTotal), heapUsedMiB: mib(peak.heapUsed), externalMiB: mib(peak.external), arrayBuffersMiB: mib(peak.arrayBuffers) };
      writeFileSync(out, JSON.stringify({ maxRssKiB: r.maxRSS, userUs: r.userCPUTime, systemUs: r.systemCPUTime, uptimeMs: process.uptime() * 1000, atPeak }));
    } catch {
      /* measurement only */
    }
  });
}
