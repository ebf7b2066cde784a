// A child whose stdin is written while it runs: for mailcow's restore script, whose menus must be
// read before they can be answered. Like exec.ts (argument arrays, timeouts, abort signal, tail of
// output), plus a writable stdin and an idle timeout: the real script loops forever when its
// input ends, so silence for too long ends it.
import { execa } from 'execa';
import { UserError } from '../errors.js';

export interface InteractiveIo {
  /** Writes to the child's stdin. */
  write(text: string): void;
  /** Closes stdin (EOF). */
  end(): void;
  /** Stops the child (a menu the caller cannot answer safely). */
  kill(): void;
}

export interface InteractiveOptions {
  what: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Kill the child when it prints nothing for this long (default 120 s). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** As ExecOptions.ownProcessGroup: a terminal's Ctrl-C does not reach the child. */
  ownProcessGroup?: boolean;
  /** Every complete output line (stdout and stderr). */
  onLine: (line: string, stream: 'stdout' | 'stderr', io: InteractiveIo) => void;
  /** The unfinished last line of stdout after each chunk (a prompt printed without newline). */
  onPartial?: (text: string, io: InteractiveIo) => void;
  tailLines?: number;
}

export async function runInteractive(cmd: string, args: string[], o: InteractiveOptions): Promise<{ exitCode: number; tail: string[] }> {
  const sub = execa(cmd, args, {
    cwd: o.cwd,
    env: o.env,
    extendEnv: true,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    timeout: o.timeoutMs,
    cancelSignal: o.signal,
    forceKillAfterDelay: 5000,
    cleanup: true,
    detached: o.ownProcessGroup ?? false,
  });
  const tail: string[] = [];
  const tailMax = o.tailLines ?? 30;
  // In a process group of its own the script's children go too (mailcow's script runs `docker run
  // -i`, whose client would otherwise outlive it, keep its output open and the restore waiting).
  const stop = () => {
    try {
      if (o.ownProcessGroup && sub.pid) process.kill(-sub.pid, 'SIGTERM');
      else sub.kill('SIGTERM');
    } catch {
      sub.kill('SIGTERM');
    }
  };
  let idle: NodeJS.Timeout | undefined;
  let idledOut = false;
  const kick = () => {
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => {
      idledOut = true;
      stop();
    }, o.idleTimeoutMs ?? 120_000);
  };
  kick();
  let ended = false;
  const io: InteractiveIo = {
    write: (t) => {
      if (!ended) sub.stdin?.write(t);
    },
    end: () => {
      if (!ended) {
        ended = true;
        sub.stdin?.end();
      }
    },
    kill: stop,
  };
  sub.stdin?.on('error', () => undefined);
  const pump = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') =>
    new Promise<void>((resolve) => {
      if (!stream) return resolve();
      let buf = '';
      stream.setEncoding('utf8');
      const emit = (line: string) => {
        tail.push(line);
        if (tail.length > tailMax) tail.shift();
        o.onLine(line, name, io);
      };
      stream.on('data', (chunk: string) => {
        kick();
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          emit(buf.slice(0, i).replace(/\r$/, ''));
          buf = buf.slice(i + 1);
        }
        if (buf && name === 'stdout') o.onPartial?.(buf, io);
      });
      stream.on('end', () => {
        if (buf) emit(buf);
        resolve();
      });
      stream.on('error', () => resolve());
    });
  const pumps = Promise.all([pump(sub.stdout, 'stdout'), pump(sub.stderr, 'stderr')]);
  const result = await sub;
  // A grandchild that escaped its group may still hold the output open: what it prints after the
  // script has ended is not waited for.
  await Promise.race([pumps, new Promise((r) => setTimeout(r, 5000).unref())]);
  sub.stdout?.destroy();
  sub.stderr?.destroy();
  if (idle) clearTimeout(idle);
  if (result.isCanceled) throw new UserError('interrupted', `${o.what} was stopped because the run was interrupted`, tail);
  if (idledOut) throw new UserError('failed', `${o.what} printed nothing for ${Math.round((o.idleTimeoutMs ?? 120_000) / 1000)} s (waiting for an answer the tool does not know?) and was stopped`, tail);
  if (result.timedOut) throw new UserError('failed', `${o.what} did not finish within ${Math.round((o.timeoutMs ?? 0) / 1000)} s and was stopped`, tail);
  if (result.exitCode === undefined) throw new UserError('failed', result.code === 'ENOENT' ? `${cmd} is not installed` : `${o.what} was killed (${result.signal ?? 'unknown'})`, tail);
  return { exitCode: result.exitCode, tail };
}
