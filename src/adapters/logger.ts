// winston: the full log (with timestamps) in LOG_FILE; on a terminal coloured lines; under
// systemd plain lines with syslog priority prefixes, because journald adds time and host itself.
// Every line passes the redactor first, so secrets never reach a log.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import winston from 'winston';

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** Registers a value that must never be written anywhere (a DB password, an SMTP password). */
  addSecret(value: string | undefined): void;
  redact(text: string): string;
  /** The last lines logged, redacted: for failure reports. */
  tail(n: number): string[];
  close(): Promise<void>;
}

const SYSLOG_PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface LoggerOptions {
  logFile?: string;
  /** 'tty': coloured; 'journal': `<6>text`; 'plain': text; 'silent': file only. */
  console?: 'tty' | 'journal' | 'plain' | 'silent';
  debug?: boolean;
}

export function consoleModeFor(stream: NodeJS.WriteStream): 'tty' | 'journal' | 'plain' {
  if (stream.isTTY) return 'tty';
  return process.env.JOURNAL_STREAM || process.env.INVOCATION_ID ? 'journal' : 'plain';
}

export function createLogger(opts: LoggerOptions): Logger {
  const secrets = new Set<string>();
  const recent: string[] = [];
  const redact = (text: string) => {
    let out = text;
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  };
  const redactFormat = winston.format((info) => {
    info.message = redact(String(info.message));
    return info;
  });

  const transports: winston.transport[] = [];
  const mode = opts.console ?? consoleModeFor(process.stderr);
  if (mode !== 'silent') {
    const fmt =
      mode === 'tty'
        ? winston.format.combine(winston.format.colorize(), winston.format.printf((i) => `${i.level} ${i.message}`))
        : mode === 'journal'
          ? winston.format.printf((i) => `<${SYSLOG_PRIORITY[i.level] ?? 6}>${i.message}`)
          : winston.format.printf((i) => (i.level === 'info' ? String(i.message) : `${i.level}: ${i.message}`));
    transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'], format: fmt }));
  }
  let fileOk = true;
  if (opts.logFile) {
    try {
      mkdirSync(dirname(opts.logFile), { recursive: true });
      transports.push(
        new winston.transports.File({
          filename: opts.logFile,
          format: winston.format.combine(winston.format.timestamp(), winston.format.printf((i) => `${i.timestamp} ${i.level.toUpperCase()} ${i.message}`)),
        }),
      );
    } catch {
      fileOk = false;
    }
  }
  const w = winston.createLogger({
    level: opts.debug ? 'debug' : 'info',
    format: redactFormat(),
    transports,
    exitOnError: false,
  });
  w.on('error', () => {
    // A full disk or a vanished log folder must not crash the backup; the console still shows it.
  });

  const log = (level: 'error' | 'warn' | 'info' | 'debug') => (msg: string) => {
    const line = redact(msg);
    if (level !== 'debug') {
      recent.push(`${level === 'info' ? '' : level.toUpperCase() + ' '}${line}`);
      if (recent.length > 200) recent.shift();
    }
    w.log(level, line);
  };
  const logger: Logger = {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    addSecret(value) {
      // Short values would shred ordinary words; mailcow generates long passwords.
      if (value && value.length >= 4) secrets.add(value);
    },
    redact,
    tail: (n) => recent.slice(-n),
    close: () =>
      new Promise<void>((resolve) => {
        let pending = transports.length;
        if (pending === 0) return resolve();
        const timer = setTimeout(resolve, 2000);
        for (const t of transports) {
          t.once('finish', () => {
            if (--pending === 0) {
              clearTimeout(timer);
              resolve();
            }
          });
        }
        w.end();
      }),
  };
  if (!fileOk && opts.logFile) logger.warn(`cannot write the log file ${opts.logFile}; logging to the console only`);
  return logger;
}
