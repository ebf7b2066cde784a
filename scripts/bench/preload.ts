// Loaded with `node --import` in front of the tool by the benchmark only (the service never
// loads it): on exit it writes the tool process's own resource usage (peak RSS, CPU incl. its
// worker threads) to $BENCH_RUSAGE_FILE, so the tool can be told apart from its children.
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_RUSAGE_FILE;
if (out) {
  process.on('exit', () => {
    try {
      const r = process.resourceUsage();
      writeFileSync(out, JSON.stringify({ maxRssKiB: r.maxRSS, userUs: r.userCPUTime, systemUs: r.systemCPUTime, uptimeMs: process.uptime() * 1000 }));
    } catch {
      /* measurement only */
    }
  });
}
