// The full log (with timestamps) in LOG_FILE, written by winston; on a terminal coloured lines;
// under systemd plain lines with syslog priority prefixes, because journald adds time and host
// itself. Every line passes the redactor first, so secrets never reach a log. The console lines are
// written directly and winston is loaded only when the file is opened: for the daily run that is
// right after the lock is taken, because loading winston cost a fifth of the time from process
// start to the lock (issue 4). Lines logged before that wait in memory with their own time.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type winstonNs from 'winston';

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** A result line (the run's summary): on stdout, so `run > file` keeps it; in the log file as info. */
  result(msg: string): void;
  /** Registers a value that must never be written anywhere (a DB password, an SMTP password). */
  addSecret(value: string | undefined): void;
  redact(text: string): string;
  /**
   * A progress line on a terminal (rewritten in place; nothing elsewhere); undefined clears it.
   * The next log line clears it first, so the two never share a line.
   */
  progress(text: string | undefined): void;
  /** The last lines logged, redacted: for failure reports. */
  tail(n: number): string[];
  /** Starts writing LOG_FILE (loads winston); earlier lines are written first. Idempotent. */
  openFile(): void;
  close(): Promise<void>;
}

const SYSLOG_PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface LoggerOptions {
  logFile?: string;
  /** 'tty': coloured; 'journal': `<6>text`; 'plain': text; 'silent': file only. */
  console?: 'tty' | 'journal' | 'plain' | 'silent';
  debug?: boolean;
  /** Do not open LOG_FILE until openFile() (or close()) is called. */
  deferFile?: boolean;
}

export function consoleModeFor(stream: NodeJS.WriteStream): 'tty' | 'journal' | 'plain' {
  if (stream.isTTY) return 'tty';
  return process.env.JOURNAL_STREAM || process.env.INVOCATION_ID ? 'journal' : 'plain';
}

type Level = 'error' | 'warn' | 'info' | 'debug';

/** ANSI colours of the level word on a terminal (red, yellow, green, blue), as winston's npm scheme had them. */
const LEVEL_COLOR: Record<Level, number> = { error: 31, warn: 33, info: 32, debug: 34 };

function consoleLine(mode: 'tty' | 'journal' | 'plain', level: Level, line: string): string {
  if (mode === 'tty') return `\x1b[${LEVEL_COLOR[level]}m${level}\x1b[39m ${line}`;
  if (mode === 'journal') return `<${SYSLOG_PRIORITY[level] ?? 6}>${line}`;
  return level === 'info' ? line : `${level}: ${line}`;
}

export function createLogger(opts: LoggerOptions): Logger {
  const secrets = new Set<string>();
  const recent: string[] = [];
  const redact = (text: string) => {
    let out = text;
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  };

  const mode = opts.console ?? consoleModeFor(process.stderr);
  let fileOk = true;
  if (opts.logFile) {
    try {
      mkdirSync(dirname(opts.logFile), { recursive: true });
    } catch {
      fileOk = false;
    }
  }
  type Entry = { level: Level; message: string; timestamp: string };
  let pending: Entry[] | undefined = opts.logFile && fileOk ? [] : undefined;
  let file: Promise<{ w: winstonNs.Logger; t: winstonNs.transport } | undefined> | undefined;
  const openFile = () => {
    if (file || !pending) return;
    file = import('winston')
      .then(({ default: winston }) => {
        const t = new winston.transports.File({
          filename: opts.logFile!,
          format: winston.format.printf((i) => `${i.timestamp} ${i.level.toUpperCase()} ${i.message}`),
        });
        const w = winston.createLogger({ level: 'debug', transports: [t], exitOnError: false });
        // A full disk or a vanished log folder must not crash the backup; the console still shows it.
        w.on('error', () => undefined);
        for (const e of pending ?? []) w.log(e);
        pending = undefined;
        return { w, t };
      })
      .catch(() => undefined);
  };
  let closed = false;
  const toFile = (e: Entry) => {
    if (closed) return;
    if (pending) pending.push(e);
    else void file?.then((f) => f?.w.log(e));
  };

  // A progress line is on the terminal (no newline yet): clear it before anything else is written.
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) process.stderr.write('\r\x1b[K');
    progressShown = false;
  };
  const log = (level: Level, stdout = false) => (msg: string) => {
    const line = redact(msg);
    if (level !== 'debug') {
      recent.push(`${level === 'info' ? '' : level.toUpperCase() + ' '}${line}`);
      if (recent.length > 200) recent.shift();
    }
    if (level === 'debug' && !opts.debug) return;
    if (mode !== 'silent') {
      clearProgress();
      if (stdout) process.stdout.write((mode === 'journal' ? consoleLine(mode, level, line) : line) + '\n');
      else process.stderr.write(consoleLine(mode, level, line) + '\n');
    }
    toFile({ level, message: line, timestamp: new Date().toISOString() });
  };
  const logger: Logger = {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    result: log('info', true),
    addSecret(value) {
      // Short values would shred ordinary words; mailcow generates long passwords.
      if (value && value.length >= 4) secrets.add(value);
    },
    redact,
    progress(text) {
      if (mode !== 'tty') return;
      clearProgress();
      if (text === undefined) return;
      process.stderr.write(redact(text));
      progressShown = true;
    },
    tail: (n) => recent.slice(-n),
    openFile,
    async close() {
      openFile();
      closed = true;
      const f = await file;
      if (!f) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        f.t.once('finish', () => {
          clearTimeout(timer);
          resolve();
        });
        f.w.end();
      });
    },
  };
  if (!fileOk && opts.logFile) logger.warn(`cannot write the log file ${opts.logFile}; logging to the console only`);
  if (!opts.deferFile) openFile();
  return logger;
}
