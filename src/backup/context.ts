// What every step of a run receives: its collaborators, passed in so tests and the sandbox can
// hand in their own clock, exec and box.
import type { Config } from '../config/schema.js';
import type { Exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/logger.js';
import type { StorageBox } from '../adapters/storage-box.js';

export interface RunContext {
  config: Config;
  configPath: string;
  log: Logger;
  exec: Exec;
  signal: AbortSignal;
  now: () => Date;
  box: StorageBox;
  dryRun: boolean;
}

export type PhaseName = 'lock' | 'preflight' | 'dump' | 'unpack' | 'encrypt' | 'manifest' | 'compare' | 'upload' | 'verify' | 'publish' | 'prune' | 'scrub' | 'report' | 'list' | 'download' | 'archives' | 'rotate';

export interface PhaseTiming {
  phase: PhaseName;
  ms: number;
}

/** Runs one phase, timing it and tagging any error with the phase it came from. */
export async function phase<T>(timings: PhaseTiming[], name: PhaseName, log: Logger, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  log.debug(`phase ${name}: start`);
  try {
    return await fn();
  } catch (e) {
    if (e && typeof e === 'object' && !('phase' in e && (e as { phase?: string }).phase)) (e as { phase?: string }).phase = name;
    throw e;
  } finally {
    timings.push({ phase: name, ms: performance.now() - start });
  }
}
