// The forced command of the Storage Box stand-in (see shared reference "storage-box.md", "The
// restricted shell" and "The stand-in the tests must build"). sshd runs it for every login as
//   node box-shell.js <state.json>
// with the client's command line in SSH_ORIGINAL_COMMAND. The state file is re-read on every
// login, so tests can switch modes without restarting sshd.
//
// It never runs a shell: commands are executed with an argv array, paths are mapped into the
// box's root folder and any path that resolves outside it is refused.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const REFUSAL = "Command not found. Use 'help' to get a list of available commands.";
const REFUSAL_EXIT = 8;

export interface BoxState {
  /** Absolute real folder that is the box's home (`/home` as the box shows it). */
  root: string;
  /** Also refuse the unconfirmed commands mv, ln, chmod, md5sum, sha1sum, sha512sum. */
  strict?: boolean;
  /** --link-dest becomes --copy-dest (no hard links), `ln` and `cp -l` are refused. */
  hardlinksFail?: boolean;
  /** sftp refuses hardlink@openssh.com (`ln` in sftp), as a box without the extension would. */
  sftpHardlinkRefused?: boolean;
  /** Quota reported by `df`. */
  quotaBytes?: number;
  /** After an rsync receive, flip one byte of the first changed file whose path contains this. */
  corruptAfterUpload?: string;
  /** The box's rsync sends at most this many KiB/s (a slow link to a restoring or standby host). */
  sendKBps?: number;
  /** Refuse sha256sum (and the other checksum tools) like any unknown command: a box without them. */
  noSha256sum?: boolean;
  /** Append one JSON line per command: {"started","time","command","exit"}. */
  log?: string;
}

const ALWAYS = new Set([
  'ls', 'll', 'tree', 'cd', 'pwd', 'mkdir', 'rmdir', 'du', 'df', 'dd', 'cat', 'touch', 'cp', 'rm',
  'sha256sum', 'help', 'exit', 'install-ssh-key', 'rsync', 'scp',
]);
const UNCONFIRMED = new Set(['mv', 'ln', 'chmod', 'md5sum', 'sha1sum', 'sha512sum']);
const SUMS = new Set(['sha256sum', 'md5sum', 'sha1sum', 'sha512sum']);
const FORBIDDEN = /[|<>;&$`\n\r]/;
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
const CHILD_ENV = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  LANG: 'C',
  LC_ALL: 'C',
  HOME: process.env.HOME ?? '/',
} as NodeJS.ProcessEnv;

class Refused extends Error {}
class PathError extends Error {}

// ---------------------------------------------------------------------------------------------
// small helpers

function out(s: string): void {
  fs.writeSync(1, s);
}
function err(s: string): void {
  fs.writeSync(2, s);
}

let state: BoxState;
let statePath: string;
let commandLine = '';
/** When the login's command began: tests see which commands ran at the same time. */
const STARTED = new Date().toISOString();
let realRoot = '';

function logAndExit(code: number): never {
  if (state?.log) {
    try {
      fs.appendFileSync(
        state.log,
        JSON.stringify({ started: STARTED, time: new Date().toISOString(), command: commandLine, exit: code }) + '\n',
      );
    } catch {
      /* logging must never change the answer */
    }
  }
  process.exit(code);
}

function refuse(): never {
  out(REFUSAL + '\n');
  logAndExit(REFUSAL_EXIT);
}

/** Split like a POSIX shell (quotes, backslashes) without any expansion. */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Refused('unterminated quote');
      cur += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= line.length) throw new Refused('unterminated quote');
        const d = line[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < line.length && '\\"$`\n'.includes(line[i + 1]!)) {
          cur += line[i + 1];
          i += 2;
        } else {
          cur += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Refused('trailing backslash');
      cur += line[i + 1];
      inWord = true;
      i += 2;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/**
 * Resolve an absolute path the way the kernel would (following symlinks component by component,
 * `..` applied to the real parent); components that do not exist are kept as they are.
 */
function resolveReal(abs: string, depth = 0): string {
  if (depth > 40) throw new PathError('too many levels of symbolic links');
  const parts = abs.split('/');
  let cur = '/';
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, p);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(next);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      const target = fs.readlinkSync(next);
      cur = resolveReal(target.startsWith('/') ? target : cur + '/' + target, depth + 1);
    } else {
      cur = next;
    }
  }
  return cur;
}

function inside(p: string): boolean {
  return p === realRoot || p.startsWith(realRoot + '/');
}

/** Box path as the client wrote it -> path relative to root (cwd), textually preserved. */
function mapRel(word: string): string {
  let rel: string;
  if (word === '/home' || word === '/home/') rel = word.endsWith('/') ? './' : '.';
  else if (word.startsWith('/home/')) rel = word.slice('/home/'.length) || './';
  else if (word.startsWith('/')) throw new PathError(`${word}: No such file or directory (outside the box)`);
  else if (word === '') rel = word;
  else rel = word;
  if (rel === '') return rel;
  checkInside(realRoot + '/' + rel, word);
  return rel.startsWith('-') ? './' + rel : rel;
}

/** Box path -> absolute real path inside root. */
function mapAbs(word: string): string {
  const rel = mapRel(word);
  return path.join(realRoot, rel);
}

function checkInside(abs: string, shown: string): void {
  if (!inside(resolveReal(abs))) throw new PathError(`${shown}: Permission denied (outside the box)`);
}

// ---------------------------------------------------------------------------------------------
// snapshots: `.zfs/snapshot/<name>/` at the box's root is read-only, as ZFS makes it. The copies
// a test takes are chmod a-w too, but the tests run as root, which ignores modes: so every
// command that writes refuses a path inside `.zfs` with the kernel's own words, and rsync and
// sftp (which write wherever their protocol says) run where `.zfs` is a read-only bind mount.

const SNAPSHOT_ROOT = '.zfs';

/** The box path `word` (as the client wrote it) lies inside the read-only `.zfs`. */
function inSnapshots(word: string): boolean {
  let rel: string;
  try {
    rel = mapRel(word);
  } catch {
    return false;
  }
  const real = resolveReal(path.join(realRoot, rel));
  const zfs = path.join(realRoot, SNAPSHOT_ROOT);
  return real === zfs || real.startsWith(zfs + '/');
}

function readOnly(message: string): never {
  err(`${message}: Read-only file system\n`);
  logAndExit(1);
}

/** The path words of a simple command (options and dd's key=value words left out). */
function pathWords(args: string[]): string[] {
  const out: string[] = [];
  let end = false;
  for (const a of args) {
    if (!end && a === '--') end = true;
    else if (!end && a.startsWith('-') && a !== '-') continue;
    else out.push(a);
  }
  return out;
}

/** Refuses, as a read-only file system would, a command that would write inside `.zfs`. */
function guardSnapshots(cmd: string, args: string[]): void {
  const words = pathWords(args);
  const hit = (w: string | undefined) => w !== undefined && inSnapshots(w);
  switch (cmd) {
    case 'rm':
    case 'rmdir':
      for (const w of words) if (hit(w)) readOnly(`${cmd}: cannot remove '${w}'`);
      return;
    case 'mkdir':
      for (const w of words) if (hit(w)) readOnly(`mkdir: cannot create directory '${w}'`);
      return;
    case 'touch':
      for (const w of words) if (hit(w)) readOnly(`touch: cannot touch '${w}'`);
      return;
    case 'chmod':
      for (const w of words.slice(1)) if (hit(w)) readOnly(`chmod: changing permissions of '${w}'`);
      return;
    case 'mv':
      for (const w of words.slice(0, -1)) if (hit(w)) readOnly(`mv: cannot move '${w}'`);
      if (hit(words.at(-1))) readOnly(`mv: cannot move '${words[0]}' to '${words.at(-1)}'`);
      return;
    case 'cp':
    case 'ln':
    case 'scp':
      if (words.length > 1 && hit(words.at(-1))) readOnly(`${cmd}: cannot create '${words.at(-1)}'`);
      return;
    case 'dd': {
      const of = args.find((a) => a.startsWith('of='))?.slice(3);
      if (hit(of)) readOnly(`dd: failed to open '${of}'`);
      return;
    }
  }
}

let roMount: string[] | undefined | null = null;
/**
 * The argv prefix that runs a program with `.zfs` bound read-only (a private mount namespace), or
 * undefined when there is no `.zfs` or the system does not allow it (then the modes are all).
 */
function readOnlyWrapper(): string[] | undefined {
  if (roMount !== null) return roMount;
  roMount = undefined;
  const zfs = path.join(realRoot, SNAPSHOT_ROOT);
  if (!fs.existsSync(zfs)) return roMount;
  const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"';
  const prefix = ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', zfs];
  if (spawnSync(prefix[0]!, [...prefix.slice(1), 'true'], { env: CHILD_ENV }).status === 0) roMount = prefix;
  return roMount;
}

/** spawn(cmd, args) with `.zfs` read-only where the system allows it. */
function spawnGuarded(cmd: string, args: string[], opts: Parameters<typeof spawn>[2]): ReturnType<typeof spawn> {
  const wrap = readOnlyWrapper();
  return wrap ? spawn(wrap[0]!, [...wrap.slice(1), cmd, ...args], opts) : spawn(cmd, args, opts);
}

// ---------------------------------------------------------------------------------------------
// commands

type Rewrite = (line: string) => string;

function run(cmd: string, args: string[], rewrite?: Rewrite): Promise<never> {
  return new Promise<never>(() => {
    const child = spawnGuarded(cmd, args, {
      cwd: realRoot,
      env: CHILD_ENV,
      stdio: ['inherit', rewrite ? 'pipe' : 'inherit', 'inherit'],
    });
    if (rewrite && child.stdout) {
      let buf = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          out(rewrite(buf.slice(0, nl)) + '\n');
          buf = buf.slice(nl + 1);
        }
      });
      child.stdout.on('end', () => {
        if (buf) out(rewrite(buf));
        buf = '';
      });
    }
    child.on('error', (e) => {
      err(`${cmd}: ${e.message}\n`);
      logAndExit(127);
    });
    child.on('close', (code, signal) => {
      logAndExit(code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1));
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 } as Record<string, number>)[sig];
}

/**
 * Map the arguments of a simple command: options pass through, `--opt=value` values that look like
 * paths are mapped, every other word is a path. Returns mapped args and mapped->original pairs.
 */
function mapArgs(args: string[], opts: { dd?: boolean } = {}): { mapped: string[]; back: Map<string, string> } {
  const mapped: string[] = [];
  const back = new Map<string, string>();
  let endOfOptions = false;
  for (const a of args) {
    if (!endOfOptions && a === '--') {
      endOfOptions = true;
      mapped.push(a);
    } else if (!endOfOptions && a.startsWith('--') && a.includes('=')) {
      const eq = a.indexOf('=');
      const value = a.slice(eq + 1);
      if (value.includes('/') || value === '..' || existsInRoot(value)) mapped.push(a.slice(0, eq + 1) + mapRel(value));
      else mapped.push(a);
    } else if (!endOfOptions && a.startsWith('-') && a !== '-') {
      if (a.includes('/')) throw new PathError(`${a}: paths attached to options are not supported`);
      mapped.push(a);
    } else if (opts.dd && /^[a-z]+=/.test(a)) {
      const eq = a.indexOf('=');
      const key = a.slice(0, eq);
      if (key === 'if' || key === 'of') {
        const m = mapRel(a.slice(eq + 1));
        back.set(m, a.slice(eq + 1));
        mapped.push(`${key}=${m}`);
      } else mapped.push(a);
    } else {
      const m = mapRel(a);
      back.set(m, a);
      mapped.push(m);
    }
  }
  return { mapped, back };
}

function existsInRoot(rel: string): boolean {
  try {
    fs.lstatSync(path.join(realRoot, rel));
    return true;
  } catch {
    return false;
  }
}

function sumRewrite(back: Map<string, string>): Rewrite {
  return (line) => {
    // "<hash>  <path>" or "\<hash>  <escaped path>"
    const m = /^(\\?[0-9a-f]+ [ *])(.*)$/.exec(line);
    if (!m) return line;
    const orig = back.get(m[2]!);
    return orig !== undefined ? m[1] + orig : line;
  };
}

function duRewrite(back: Map<string, string>): Rewrite {
  return (line) => {
    const tab = line.indexOf('\t');
    if (tab < 0) return line;
    const p = line.slice(tab + 1);
    for (const [m, o] of back) {
      if (p === m) return line.slice(0, tab + 1) + o;
      const base = m.endsWith('/') ? m : m + '/';
      if (p.startsWith(base)) return line.slice(0, tab + 1) + (o.endsWith('/') ? o : o + '/') + p.slice(base.length);
    }
    return line;
  };
}

function human(bytes: number): string {
  const units = ['K', 'M', 'G', 'T', 'P', 'E'];
  if (bytes < 1024) return String(bytes);
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (v < 10) {
    const r = Math.ceil(v * 10) / 10;
    return (r >= 10 ? String(Math.round(r)) : r.toFixed(1)) + units[i];
  }
  const c = Math.ceil(v);
  if (c >= 1024 && i < units.length - 1) return '1.0' + units[i + 1];
  return String(c) + units[i];
}

function df(args: string[]): never {
  const humanUnits = args.some((a) => /^-[a-zA-Z]*h/.test(a) || a === '--human-readable');
  const size = state.quotaBytes ?? 1024 ** 4;
  const du = spawnSync('du', ['-sk', realRoot], { env: CHILD_ENV, encoding: 'utf8' });
  const usedK = Number.parseInt(String(du.stdout).split('\t')[0] ?? '0', 10) || 0;
  const used = usedK * 1024;
  const avail = Math.max(0, size - used);
  const pct = size > 0 ? Math.min(100, Math.ceil((used * 100) / size)) : 100;
  const rows = humanUnits
    ? [
        ['Filesystem', 'Size', 'Used', 'Avail', 'Use%', 'Mounted on'],
        ['storagebox', human(size), human(used), human(avail), `${pct}%`, '/home'],
      ]
    : [
        ['Filesystem', '1K-blocks', 'Used', 'Available', 'Use%', 'Mounted on'],
        ['storagebox', String(Math.floor(size / 1024)), String(usedK), String(Math.floor(avail / 1024)), `${pct}%`, '/home'],
      ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) {
    out(
      r
        .map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(i === 0 ? widths[i]! : 0) : c.padStart(widths[i]!)))
        .join(' ') + '\n',
    );
  }
  logAndExit(0);
}

function help(): never {
  const cmds = [...ALWAYS, ...(state.strict ? [] : [...UNCONFIRMED])].filter((c) => c !== 'scp' && !(state.noSha256sum && SUMS.has(c)));
  out(
    '+----------------------------------------------------+\n' +
      '| Storage Box stand-in (restricted shell)            |\n' +
      '+----------------------------------------------------+\n' +
      'Available commands:\n' +
      cmds.sort().map((c) => `  ${c}`).join('\n') +
      '\nPrograms: rsync (server side only), scp, sftp\n',
  );
  logAndExit(0);
}

function installSshKey(): Promise<never> {
  const chunks: Buffer[] = [];
  let total = 0;
  process.stdin.on('data', (d: Buffer) => {
    total += d.length;
    if (total > 64 * 1024) {
      err('install-ssh-key: input too large\n');
      logAndExit(1);
    }
    chunks.push(d);
  });
  process.stdin.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    const keys = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (keys.length === 0 || !keys.every((k) => /^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$/.test(k))) {
      err('install-ssh-key: no valid OpenSSH public key on stdin\n');
      logAndExit(1);
    }
    const dir = path.join(realRoot, '.ssh');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'authorized_keys');
    let prev = '';
    try {
      prev = fs.readFileSync(file, 'utf8');
    } catch {
      /* new file */
    }
    fs.writeFileSync(file, prev + (prev && !prev.endsWith('\n') ? '\n' : '') + keys.join('\n') + '\n', { mode: 0o600 });
    out(`Key${keys.length > 1 ? 's' : ''} installed (${keys.length}).\n`);
    logAndExit(0);
  });
  return new Promise<never>(() => {});
}

// ---------------------------------------------------------------------------------------------
// rsync

/** Options whose value comes in the next word when not written as --opt=value. */
const RSYNC_VALUE_OPTS = new Set([
  '--link-dest', '--copy-dest', '--compare-dest', '--temp-dir', '--partial-dir', '--backup-dir',
  '--suffix', '--max-size', '--min-size', '--max-delete', '--timeout', '--contimeout', '--bwlimit',
  '--log-format', '--out-format', '--compress-level', '--checksum-seed', '--chmod', '--usermap',
  '--groupmap', '--chown', '--modify-window', '--block-size', '--iconv', '--skip-compress',
  '--compress-choice', '--zc', '--checksum-choice', '--cc', '--files-from', '--exclude-from',
  '--include-from', '--filter', '--exclude', '--include', '--max-alloc', '--stop-after', '--stop-at',
  '--info', '--debug', '--remote-option', '--mkpath-mode',
]);
const RSYNC_BASIS_OPTS = new Set(['--link-dest', '--copy-dest', '--compare-dest']);
const RSYNC_DIR_OPTS = new Set(['--temp-dir', '--partial-dir', '--backup-dir']);
const RSYNC_FORBIDDEN = new Set([
  '--log-file', '--log-file-format', '--write-batch', '--only-write-batch', '--read-batch',
  '--secluded-args', '--protect-args', '--daemon', '--config', '--rsh', '--rsync-path', '--address',
  '--port', '--sockopts', '--password-file', '--early-input', '--fake-super',
]);

function rsync(words: string[]): Promise<never> {
  if (words[1] !== '--server') refuse();
  const args = words.slice(1);
  if (args.some((a) => a === '--secluded-args' || a === '--protect-args' || /^-[a-df-zA-Z]*s/.test(a)))
    throw new PathError('--secluded-args (-s) is not supported by this box: paths must be on the command line');
  const dot = args.indexOf('.');
  if (dot < 0) throw new PathError('missing "." argument');
  const opts: { name: string; value?: string; joined: boolean; raw: string }[] = [];
  // parse options (before ".")
  for (let i = 0; i < dot; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(0, eq) : a;
      if (RSYNC_FORBIDDEN.has(name)) throw new PathError(`option ${name} is not allowed on this box`);
      if (eq >= 0) opts.push({ name, value: a.slice(eq + 1), joined: true, raw: a });
      else if (RSYNC_VALUE_OPTS.has(name)) {
        if (i + 1 >= dot) throw new PathError(`${name} needs a value`);
        opts.push({ name, value: args[++i]!, joined: false, raw: a });
      } else opts.push({ name, joined: false, raw: a });
    } else if (a.startsWith('-') && a.length > 1) {
      // short cluster; everything after 'e' is the capability string
      const body = a.slice(1);
      for (let k = 0; k < body.length; k++) {
        const ch = body[k]!;
        if (ch === 'e') break;
        if (ch === 'T' || ch === 'B' || ch === 'M') throw new PathError(`-${ch} is not supported by this box`);
      }
      opts.push({ name: a, joined: false, raw: a });
    } else {
      throw new PathError(`unexpected argument ${a}`);
    }
  }
  const sender = opts.some((o) => o.name === '--sender');
  const rawPaths = args.slice(dot + 1);
  if (rawPaths.some((p) => p.startsWith('-'))) throw new PathError('options after "." are not allowed');
  const paths = rawPaths.map((p) => mapRel(p));
  if (!sender && rawPaths[0] !== undefined && inSnapshots(rawPaths[0])) {
    err(`rsync: [Receiver] mkdir "${rawPaths[0]}" failed: Read-only file system (30)\n`);
    logAndExit(23);
  }
  const destAbs = !sender && paths[0] !== undefined ? path.join(realRoot, paths[0]) : realRoot;

  for (const o of opts) {
    if (o.value === undefined) continue;
    if (o.name === '--files-from' || o.name === '--exclude-from' || o.name === '--include-from') {
      if (o.value !== '-') throw new PathError(`${o.name} must read from the connection`);
    } else if (RSYNC_BASIS_OPTS.has(o.name)) {
      if (o.value.startsWith('/')) o.value = mapAbs(o.value);
      else checkInside(destAbs + '/' + o.value, o.value);
      if (state.hardlinksFail && o.name === '--link-dest') o.name = '--copy-dest';
    } else if (RSYNC_DIR_OPTS.has(o.name)) {
      if (o.value.startsWith('/')) o.value = mapAbs(o.value);
      else {
        checkInside(realRoot + '/' + o.value, o.value);
        checkInside(destAbs + '/' + o.value, o.value);
      }
    }
  }
  const argv: string[] = [];
  for (const o of opts) {
    if (o.value === undefined) argv.push(o.raw);
    else argv.push(`${o.name}=${o.value}`);
  }
  if (sender && state.sendKBps) argv.push(`--bwlimit=${state.sendKBps}`);
  argv.push('.', ...paths);

  const before = !sender && state.corruptAfterUpload ? inventory() : undefined;
  return new Promise<never>(() => {
    const child = spawnGuarded('/usr/bin/rsync', argv, { cwd: realRoot, env: CHILD_ENV, stdio: 'inherit' });
    child.on('error', (e) => {
      err(`rsync: ${e.message}\n`);
      logAndExit(127);
    });
    child.on('close', (code, signal) => {
      if (before) {
        try {
          corruptOnce(before);
        } catch (e) {
          err(`box-shell: corruption failed: ${(e as Error).message}\n`);
        }
      }
      logAndExit(code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1));
    });
  });
}

type Inventory = Map<string, string>; // rel path -> "ino:ctimeNs:size"

function inventory(): Inventory {
  const inv: Inventory = new Map();
  const walk = (rel: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(realRoot, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === '.ssh') continue;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        const st = fs.lstatSync(path.join(realRoot, r), { bigint: true });
        inv.set(r, `${st.ino}:${st.ctimeNs}:${st.size}:${st.mtimeNs}`);
      }
    }
  };
  walk('');
  return inv;
}

function corruptOnce(before: Inventory): void {
  const needle = state.corruptAfterUpload;
  if (!needle) return;
  const after = inventory();
  const candidates = [...after.entries()]
    .filter(([rel, sig]) => rel.includes(needle) && before.get(rel) !== sig)
    .map(([rel]) => rel)
    .sort();
  for (const rel of candidates) {
    const abs = path.join(realRoot, rel);
    const st = fs.statSync(abs, { bigint: true });
    if (st.size === 0n) continue;
    const size = Number(st.size);
    const off = Math.floor(size / 2);
    if (st.nlink > 1n) {
      // break the hard link first so an older backup sharing the inode stays intact
      const tmp = abs + '.corrupt-tmp';
      fs.copyFileSync(abs, tmp);
      fs.chmodSync(tmp, Number(st.mode) & 0o7777);
      fs.renameSync(tmp, abs);
    }
    const fd = fs.openSync(abs, 'r+');
    try {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, off);
      b[0] = b[0]! ^ 0xff;
      fs.writeSync(fd, b, 0, 1, off);
    } finally {
      fs.closeSync(fd);
    }
    const ts = (ns: bigint): string => `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
    spawnSync('touch', ['-c', '-m', '-d', ts(st.mtimeNs), abs], { env: CHILD_ENV });
    spawnSync('touch', ['-c', '-a', '-d', ts(st.atimeNs), abs], { env: CHILD_ENV });
    // clear the field so it happens once
    const cur = JSON.parse(fs.readFileSync(statePath, 'utf8')) as BoxState;
    delete cur.corruptAfterUpload;
    const tmp = statePath + '.tmp' + process.pid;
    fs.writeFileSync(tmp, JSON.stringify(cur, null, 2) + '\n');
    fs.renameSync(tmp, statePath);
    return;
  }
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  statePath = process.argv[2] ?? '';
  if (!statePath) {
    err('box-shell: usage: box-shell.js <state.json>\n');
    process.exit(1);
  }
  state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as BoxState;
  realRoot = fs.realpathSync(state.root);
  process.chdir(realRoot);

  const original = process.env.SSH_ORIGINAL_COMMAND;
  commandLine = original ?? '';
  if (original === undefined || original.trim() === '') {
    out('Storage Box stand-in: restricted shell. Use "help" to get a list of available commands.\n');
    logAndExit(0);
  }
  if (FORBIDDEN.test(original)) refuse();
  let words: string[];
  try {
    words = tokenize(original);
  } catch {
    refuse();
  }
  if (words.length === 0) refuse();
  const [cmd, ...args] = words as [string, ...string[]];
  if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(cmd)) refuse();

  // sftp subsystem: sshd puts the subsystem's configured command into SSH_ORIGINAL_COMMAND
  // (the client's own arguments, if any, are ignored: the server always starts in the box)
  if (cmd === 'internal-sftp' || cmd === SFTP_SERVER) {
    const deny = state.hardlinksFail || state.sftpHardlinkRefused ? ['-P', 'hardlink'] : [];
    await run(SFTP_SERVER, ['-d', realRoot, ...deny]);
  }

  if (!ALWAYS.has(cmd) && !(UNCONFIRMED.has(cmd) && !state.strict)) refuse();
  if (state.noSha256sum && SUMS.has(cmd)) refuse();
  try {
    guardSnapshots(cmd, args);
  } catch (e) {
    if (!(e instanceof PathError)) throw e;
  }

  try {
    switch (cmd) {
      case 'help':
        help();
      case 'exit':
        logAndExit(0);
      case 'pwd':
        out('/home\n');
        logAndExit(0);
      case 'df':
        df(args);
      case 'install-ssh-key':
        await installSshKey();
      case 'rsync':
        await rsync(words);
      case 'cd': {
        const target = args.find((a) => !a.startsWith('-')) ?? '/home';
        const abs = mapAbs(target);
        if (!fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) {
          err(`cd: ${target}: No such file or directory\n`);
          logAndExit(1);
        }
        logAndExit(0);
      }
      case 'tree': {
        if (!fs.existsSync('/usr/bin/tree')) {
          err('tree: not available on this stand-in\n');
          logAndExit(127);
        }
        await run('/usr/bin/tree', mapArgs(args).mapped);
      }
      case 'll':
        await run('ls', ['-l', ...mapArgs(args).mapped]);
      case 'ln':
        if (state.hardlinksFail) {
          err('ln: failed to create link: Operation not supported\n');
          logAndExit(1);
        }
        await run('ln', mapArgs(args).mapped);
      case 'cp':
        if (state.hardlinksFail && args.some((a) => a === '--link' || /^-[a-zA-Z]*l/.test(a))) {
          err('cp: cannot create hard link: Operation not supported\n');
          logAndExit(1);
        }
        await run('cp', mapArgs(args).mapped);
      case 'dd':
        await run('dd', mapArgs(args, { dd: true }).mapped);
      case 'du': {
        const { mapped, back } = mapArgs(args);
        await run('du', mapped, duRewrite(back));
      }
      case 'scp': {
        if (!args.some((a) => /^-[a-zA-Z]*[tf]/.test(a))) refuse();
        await run('scp', mapArgs(args).mapped);
      }
      default: {
        if (SUMS.has(cmd)) {
          const { mapped, back } = mapArgs(args);
          await run(cmd, mapped, sumRewrite(back));
        }
        await run(cmd, mapArgs(args).mapped);
      }
    }
  } catch (e) {
    if (e instanceof PathError) {
      err(`${cmd}: ${e.message}\n`);
      logAndExit(1);
    }
    throw e;
  }
}

main().catch((e: unknown) => {
  err(`box-shell: ${(e as Error).message ?? String(e)}\n`);
  logAndExit(1);
});
