// The only place that spawns processes. Argument arrays only (no shell strings), stdin closed
// unless input is given (so no prompt can hang the timer), output streamed line by line (a
// maildir's tar listing is millions of lines: never held in memory unless asked), the last
// lines kept for the error report, and one abort signal that reaches every child.
import { createInterface } from 'node:readline';
import type { execa as Execa } from 'execa';
import { UserError } from '../errors.js';

export interface RunOptions {
  /** Human name of the action, for error messages: "mailcow's backup script". */
  what: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Written to stdin, then closed. Without it stdin is /dev/null. */
  input?: string;
  /** Piped to stdin instead (a decrypted stream that must not touch the disk). */
  inputStream?: NodeJS.ReadableStream;
  timeoutMs?: number;
  /** Keep stdout in memory and return it (for small outputs only). */
  capture?: boolean;
  /** Called for each output line as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Exit codes that are not a failure (default [0]). */
  okCodes?: number[];
  /** Kind of error thrown on failure (default 'failed'). */
  errorKind?: UserError['kind'];
  tailLines?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  tail: string[];
}

export type Exec = (cmd: string, args: string[], opts: RunOptions) => Promise<RunResult>;

// execa is loaded on first use: it costs ~130 ms of start-up, and the lock comes first.
let execaLoaded: Promise<typeof Execa> | undefined;
const loadExeca = () => (execaLoaded ??= import('execa').then((m) => m.execa));

export interface ExecOptions {
  /**
   * Children in a process group of their own: a terminal's Ctrl-C (sent to the whole foreground
   * group) reaches only us, so a restore step that must not be cut in half can finish.
   */
  ownProcessGroup?: boolean;
}

export function createExec(signal?: AbortSignal, redact: (s: string) => string = (s) => s, eo: ExecOptions = {}): Exec {
  return async (cmd, args, opts) => {
    const tailMax = opts.tailLines ?? 20;
    const tail: string[] = [];
    const chunks: string[] = [];
    const execa = await loadExeca();
    const sub = execa(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      extendEnv: true,
      input: (opts.inputStream as import('node:stream').Readable | undefined) ?? opts.input,
      stdin: opts.input === undefined && !opts.inputStream ? 'ignore' : 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      timeout: opts.timeoutMs,
      cancelSignal: signal,
      forceKillAfterDelay: 5000,
      // Children die with us: a backup killed by systemd must not leave an rsync running.
      cleanup: true,
      detached: eo.ownProcessGroup ?? false,
    });
    const pump = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') =>
      new Promise<void>((resolve) => {
        if (!stream) return resolve();
        const rl = createInterface({ input: stream, crlfDelay: Infinity });
        rl.on('line', (line) => {
          if (opts.capture && name === 'stdout') chunks.push(line);
          tail.push(redact(line));
          if (tail.length > tailMax) tail.shift();
          opts.onLine?.(line, name);
        });
        rl.on('close', () => resolve());
      });
    const [result] = await Promise.all([sub, pump(sub.stdout, 'stdout'), pump(sub.stderr, 'stderr')]);
    const ok = opts.okCodes ?? [0];
    if (result.isCanceled) throw new UserError('interrupted', `${opts.what} was stopped because the run was interrupted`, tail);
    if (result.timedOut) {
      throw new UserError(opts.errorKind ?? 'failed', `${opts.what} did not finish within ${Math.round((opts.timeoutMs ?? 0) / 1000)} s and was stopped`, tail);
    }
    const code = result.exitCode;
    if (code === undefined) {
      const why = result.code === 'ENOENT' ? `${cmd} is not installed (not found on PATH)` : `${opts.what} was killed (${result.signal ?? result.code ?? 'unknown'})`;
      throw new UserError(opts.errorKind ?? 'failed', why, tail);
    }
    if (!ok.includes(code)) {
      const last = tail.filter((l) => l.trim()).slice(-1)[0] ?? 'no output';
      throw new UserError(opts.errorKind ?? 'failed', `${opts.what} failed (exit ${code}): ${last}`, tail);
    }
    return { exitCode: code, stdout: chunks.join('\n'), tail };
  };
}

export interface Background {
  /** Resolves when the process ends, with its exit code and the last lines of its stderr. */
  exited: Promise<{ code: number | undefined; tail: string[] }>;
  running(): boolean;
  stop(): Promise<void>;
}

/**
 * A long-lived child (the run's SSH master connection). It stays in our process group, so it
 * dies with the run when systemd kills the unit, instead of lingering as a daemon.
 */
export async function spawnBackground(cmd: string, args: string[], signal?: AbortSignal): Promise<Background> {
  const tail: string[] = [];
  let done = false;
  const execa = await loadExeca();
  const sub = execa(cmd, args, { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false, reject: false, cancelSignal: signal, cleanup: true, forceKillAfterDelay: 3000 });
  if (sub.stderr) {
    createInterface({ input: sub.stderr, crlfDelay: Infinity }).on('line', (l) => {
      tail.push(l);
      if (tail.length > 20) tail.shift();
    });
  }
  const exited = sub.then((r) => {
    done = true;
    return { code: r.exitCode, tail };
  });
  return {
    exited,
    running: () => !done,
    async stop() {
      if (!done) sub.kill('SIGTERM');
      await exited;
    },
  };
}
