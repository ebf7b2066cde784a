// Loaded with `node --import` in front of the tool by the benchmark only (the service never
// loads it): on exit it writes the tool process's own resource usage (peak RSS, CPU incl. its
// worker threads) to $BENCH_RUSAGE_FILE, so the tool can be told apart from its children, and
// where the memory was at the moment of the peak (V8 heap, buffers outside it), sampled, for the
// whole run and for each phase (told apart by the tool's own `phase X: start` debug lines).
// Samples miss what a synchronous stretch holds for less than a turn of the event loop (at 1M
// messages maxRSS was up to 21 MiB above every sample), so each phase's true peak is also read:
// the kernel's VmHWM, reset at every phase's start (/proc/self/clear_refs). The reset also lowers
// what getrusage reports, so the run's peak is the largest of the phases' peaks.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.BENCH_RUSAGE_FILE;
if (out) {
  let peak: NodeJS.MemoryUsage | undefined;
  let phase = 'start';
  const byPhase: Record<string, NodeJS.MemoryUsage> = {};
  const hwmByPhase: Record<string, number> = {};
  const endPhase = (reset: boolean) => {
    try {
      const kib = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
      hwmByPhase[phase] = Math.max(hwmByPhase[phase] ?? 0, kib);
      if (reset) writeFileSync('/proc/self/clear_refs', '5');
    } catch {
      /* measurement only */
    }
  };
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const m = typeof chunk === 'string' ? /phase (\w+): start/.exec(chunk) : undefined;
      if (m) {
        endPhase(true);
        phase = m[1]!;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    if (!peak || m.rss > peak.rss) peak = m;
    if (!byPhase[phase] || m.rss > byPhase[phase].rss) byPhase[phase] = m;
  }, 20);
  timer.unref();
  process.on('exit', () => {
    try {
      endPhase(false);
      const r = process.resourceUsage();
      const mib = (n: number | undefined) => (n === undefined ? undefined : Math.round((n / 1048576) * 10) / 10);
      const at = (m: NodeJS.MemoryUsage) => ({ rssMiB: mib(m.rss), heapTotalMiB: mib(m.heapTotal), heapUsedMiB: mib(m.heapUsed), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) });
      const atPeakByPhase = Object.fromEntries(Object.entries(byPhase).map(([k, m]) => [k, at(m)]));
      const maxRssKiB = Math.max(r.maxRSS, ...Object.values(hwmByPhase));
      const peakRssMiBByPhase = Object.fromEntries(Object.entries(hwmByPhase).map(([k, kib]) => [k, mib(kib * 1024)]));
      writeFileSync(out, JSON.stringify({ maxRssKiB, peakRssMiBByPhase, userUs: r.userCPUTime, systemUs: r.systemCPUTime, uptimeMs: process.uptime() * 1000, atPeak: peak && at(peak), atPeakByPhase }));
    } catch {
      /* measurement only */
    }
  });
}
