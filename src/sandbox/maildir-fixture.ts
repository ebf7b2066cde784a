/**
 * Seeded generator of realistic dovecot Maildir++ trees, as found in mailcow's vmail volume:
 *   <domain>/<localpart>/<MAILDIR_SUB>/{cur,new,tmp}, plus .Sent .Drafts .Trash .Archive.2024 .Junk
 *   ".Entw&APw-rfe" (modified UTF-7 for "Entwürfe") and ".Sent Items" (space) sub-folders.
 *
 * Deterministic for a seed: same file names, contents and mtimes on every run (writes happen
 * concurrently, but every byte is derived from the seed and the message index only).
 * Bulk bytes come from AES-128-CTR keyed from the seed (fast, incompressible, like mail_crypt data);
 * every decision (sizes, names, flags) comes from mulberry32.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { promises as fsp, type Dirent } from 'node:fs';
import path from 'node:path';

// ---------------------------------------------------------------- PRNG helpers

/** mulberry32: tiny deterministic 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` deterministic pseudo-random (incompressible) bytes for the given key material. */
export function seededBytes(n: number, ...key: (string | number)[]): Buffer {
  const h = createHash('sha256').update(key.join(':')).digest();
  const cipher = createCipheriv('aes-128-ctr', h.subarray(0, 16), h.subarray(16, 32));
  return cipher.update(Buffer.alloc(n));
}

const int = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

// ---------------------------------------------------------------- constants

export const VMAIL_UID = 5000;
export const VMAIL_GID = 5000;

/** Maildir++ folder names ('' = INBOX) and the share of messages each gets. */
export const MAILDIR_FOLDERS: readonly { name: string; weight: number; display: string }[] = [
  { name: '', weight: 50, display: 'INBOX' },
  { name: '.Sent', weight: 14, display: 'Sent' },
  { name: '.Drafts', weight: 2, display: 'Drafts' },
  { name: '.Trash', weight: 5, display: 'Trash' },
  { name: '.Junk', weight: 3, display: 'Junk' },
  { name: '.Archive.2024', weight: 14, display: 'Archive/2024' },
  { name: '.Entw&APw-rfe', weight: 3, display: 'Entw&APw-rfe' },
  { name: '.Sent Items', weight: 9, display: 'Sent Items' },
];

const FIRST = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy',
  'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'yvonne'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'beispiel.de', 'exemple.fr',
  'muster-gmbh.de', 'acme.test', 'contoso.test'];
const PEERS = ['newsletter@shop.example', 'noreply@bank.example', 'team@project.example',
  'info@verein.example', 'billing@hoster.example', 'jan.meier@firma.example', 'support@vendor.example'];
const SUBJECTS = ['Re: Angebot', 'Meeting tomorrow', 'Rechnung Nr. 2024-', 'Your order has shipped',
  'Fwd: Unterlagen', 'Weekly report', 'Einladung', 'Password reset', 'Re: Re: Urlaub', 'Invoice',
  'Newsletter', 'Termin', 'Quarterly numbers', 'Photos from the weekend'];
const WORDS = ('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut ' +
  'labore et dolore magna aliqua bitte danke gruss termin rechnung angebot meeting report the and of to ' +
  'with for please thanks regards project status update next week morgen heute').split(' ');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Fixed epoch for generated mail: 2024-01-01T00:00:00Z; messages are spread over a year. */
const EPOCH = 1704067200;
const YEAR = 365 * 86400;

// ---------------------------------------------------------------- options / results

export interface GenerateMaildirOptions {
  seed: number;
  /** approximate total bytes of message files to write */
  totalBytes: number;
  domains?: number;
  usersPerDomain?: number;
  /** plain text bodies (and base64 attachments) instead of incompressible bytes */
  plainText?: boolean;
  /** message size range in bytes, default 2 KiB .. 50 KiB */
  minMsg?: number;
  maxMsg?: number;
  /** share of messages that carry a big attachment (default 0.005, only when totalBytes >= 32 MiB) */
  attachmentFraction?: number;
  /** average attachment size in bytes (default 3 MiB; actual 0.5x..1.5x) */
  attachmentBytes?: number;
  /** mailcow's MAILDIR_SUB (default 'Maildir'; '' puts cur/new/tmp directly in the user folder) */
  maildirSub?: string;
  /** concurrent file writes (default 32) */
  concurrency?: number;
}

export interface GenerateMaildirResult {
  /** all files written (messages + dovecot metadata files) */
  files: number;
  /** bytes of all files written */
  bytes: number;
  /** mailbox addresses, e.g. alice@example.com */
  users: string[];
}

export interface MutateMaildirOptions {
  seed: number;
  /** new messages, as a fraction of the existing message count */
  newFraction: number;
  /** deleted messages, as a fraction of the existing message count */
  deleteFraction: number;
  /** flag changes (file renames), as a fraction of the existing message count */
  renameFraction: number;
  concurrency?: number;
}

export interface MutateMaildirResult {
  newBytes: number;
  newFiles: number;
  deleted: number;
  renamed: number;
  renamedBytes: number;
}

// ---------------------------------------------------------------- small fs helpers

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

async function mkdirOwned(dir: string, chown: boolean): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  if (chown) await fsp.chown(dir, VMAIL_UID, VMAIL_GID);
}

async function writeOwned(file: string, data: Buffer | string, mtime: number | undefined, chown: boolean, mode = 0o600): Promise<void> {
  const fh = await fsp.open(file, 'w', mode);
  try {
    await fh.writeFile(data);
    if (chown) await fh.chown(VMAIL_UID, VMAIL_GID);
    if (mtime !== undefined) await fh.utimes(mtime, mtime);
  } finally {
    await fh.close();
  }
}

/** Run tasks with at most `limit` in flight; tasks are pulled lazily from the iterator. */
async function runPool<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  let failed: unknown;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failed !== undefined) return;
      const n = it.next();
      if (n.done) return;
      try {
        await fn(n.value);
      } catch (e) {
        failed = e;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failed !== undefined) throw failed;
}

function rfcDate(t: number): string {
  const d = new Date(t * 1000);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

function countLF(buf: Buffer): number {
  let n = 0;
  let i = -1;
  while ((i = buf.indexOf(10, i + 1)) !== -1) n++;
  return n;
}

// ---------------------------------------------------------------- message construction

interface MessagePlan {
  /** absolute folder path (the Maildir folder, containing cur/new/tmp) */
  folder: string;
  user: string;
  sub: 'cur' | 'new';
  flags: string;
  size: number;
  attachment: boolean;
  time: number;
  usec: number;
  pid: number;
  host: string;
  /** key for content bytes */
  key: string;
  outgoing: boolean;
}

function buildMessage(m: MessagePlan, plainText: boolean): Buffer {
  const rnd = mulberry32(parseInt(createHash('sha1').update(m.key).digest('hex').slice(0, 8), 16));
  const [local, domain] = m.user.split('@') as [string, string];
  const peer = pick(rnd, PEERS);
  const from = m.outgoing ? m.user : peer;
  const to = m.outgoing ? peer : m.user;
  const boundary = `----=_Part_${int(rnd, 100000, 999999)}_${int(rnd, 1000000, 9999999)}`;
  const msgid = `<${m.time.toString(36)}.${int(rnd, 1e6, 9e6).toString(36)}@${from.split('@')[1]}>`;
  const qid = Array.from({ length: 11 }, () => pick(rnd, [...'BCDFGHJKLMNPQRSTVWXZ0123456789'])).join('');
  const headers = [
    `Return-Path: <${from}>`,
    `Delivered-To: ${m.user}`,
    `Received: from mail.${from.split('@')[1]} (mail.${from.split('@')[1]} [203.0.113.${int(rnd, 2, 250)}])`,
    `\tby mail.${domain} (Postfix) with ESMTPS id 4${qid}`,
    `\tfor <${to}>; ${rfcDate(m.time)}`,
    `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${from.split('@')[1]}; s=dkim;`,
    `\tt=${m.time}; bh=${seededBytes(32, m.key, 'bh').toString('base64')};`,
    `\tb=${seededBytes(96, m.key, 'b').toString('base64')}`,
    `X-Rspamd-Queue-Id: 4${qid}`,
    `X-Spamd-Result: default: False [${(rnd() * 4 - 1).toFixed(2)} / 15.00]`,
    `From: ${from.split('@')[0]} <${from}>`,
    `To: ${to === m.user ? local : to.split('@')[0]} <${to}>`,
    `Subject: ${pick(rnd, SUBJECTS)}${int(rnd, 1, 9999)}`,
    `Date: ${rfcDate(m.time)}`,
    `Message-ID: ${msgid}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    '',
  ].join('\n');
  const head = Buffer.from(headers, 'utf8');
  const bodyLen = Math.max(0, m.size - head.length);
  if (!plainText) {
    // mail_crypt-like: the rest is incompressible
    return Buffer.concat([head, seededBytes(bodyLen, m.key, 'body')]);
  }
  // plain text: words, wrapped at ~72 chars; attachments base64 of random bytes
  const attachLen = m.attachment ? Math.floor(bodyLen * 0.97) : 0;
  const textLen = bodyLen - attachLen;
  const parts: string[] = [];
  let len = 0;
  let line = '';
  while (len < textLen) {
    const w = WORDS[Math.floor(rnd() * WORDS.length)]!;
    if (line.length + w.length + 1 > 72) {
      parts.push(line, '\n');
      len += line.length + 1;
      line = '';
    }
    line += (line ? ' ' : '') + w;
  }
  const text = parts.join('');
  let out = Buffer.concat([head, Buffer.from(text, 'utf8')]);
  if (attachLen > 0) {
    const ah = `\n--${boundary}\nContent-Type: application/pdf; name="scan.pdf"\nContent-Transfer-Encoding: base64\n` +
      `Content-Disposition: attachment; filename="scan.pdf"\n\n`;
    const raw = seededBytes(Math.floor((attachLen * 3) / 4), m.key, 'att').toString('base64');
    const lines = raw.match(/.{1,76}/g) ?? [];
    out = Buffer.concat([out, Buffer.from(ah + lines.join('\n') + `\n--${boundary}--\n`, 'utf8')]);
  } else {
    out = Buffer.concat([out, Buffer.from(`\n--${boundary}--\n`, 'utf8')]);
  }
  return out;
}

/** dovecot base file name (without ":2,flags"), size and vsize filled in later */
function baseName(m: MessagePlan, size: number, vsize: number): string {
  return `${m.time}.M${m.usec}P${m.pid}.${m.host},S=${size},W=${vsize}`;
}

function fileName(base: string, sub: 'cur' | 'new', flags: string): string {
  return sub === 'new' ? base : `${base}:2,${flags}`;
}

function sortFlags(flags: string): string {
  return [...new Set(flags)].sort().join('');
}

// ---------------------------------------------------------------- dovecot metadata files

function uidlistText(uidvalidity: number, nextUid: number, guid: string, entries: { uid: number; base: string }[]): string {
  const lines = [`3 V${uidvalidity} N${nextUid} G${guid}`];
  for (const e of entries) lines.push(`${e.uid} :${e.base}`);
  return lines.join('\n') + '\n';
}

const KEYWORDS = '0 $Forwarded\n1 NonJunk\n2 $MDNSent\n3 Junk\n';

// ---------------------------------------------------------------- generateMaildir

export async function generateMaildir(root: string, opts: GenerateMaildirOptions): Promise<GenerateMaildirResult> {
  const rnd = mulberry32(opts.seed);
  const plainText = opts.plainText ?? false;
  const minMsg = Math.max(600, opts.minMsg ?? 2 * 1024);
  const maxMsg = Math.max(minMsg, opts.maxMsg ?? 50 * 1024);
  const attachmentBytes = opts.attachmentBytes ?? 3 * 1024 * 1024;
  const attachmentFraction = opts.totalBytes >= 32 * 1024 * 1024 ? (opts.attachmentFraction ?? 0.005) : (opts.attachmentFraction ?? 0);
  const sub = opts.maildirSub ?? 'Maildir';
  const chown = isRoot();
  const concurrency = opts.concurrency ?? 32;

  // --- users
  const nDomains = Math.max(1, Math.min(opts.domains ?? 2, DOMAINS.length));
  const perDomain = Math.max(1, Math.min(opts.usersPerDomain ?? 3, FIRST.length * 4));
  const users: string[] = [];
  for (let d = 0; d < nDomains; d++) {
    for (let u = 0; u < perDomain; u++) {
      const first = FIRST[u % FIRST.length]!;
      users.push(`${u < FIRST.length ? first : `${first}${Math.floor(u / FIRST.length)}`}@${DOMAINS[d]}`);
    }
  }
  // skewed mailbox sizes: a few users hold most of the mail
  const userWeights = users.map((_, i) => 1 / Math.pow(i + 1, 0.7) * (0.5 + rnd()));
  const folderWeights = MAILDIR_FOLDERS.map((f) => f.weight);
  const cum = (ws: number[]) => { let s = 0; return ws.map((w) => (s += w)); };
  const userCum = cum(userWeights);
  const folderCum = cum(folderWeights);
  const choose = (c: number[]): number => {
    const r = rnd() * c[c.length - 1]!;
    const i = c.findIndex((x) => r < x);
    return i < 0 ? c.length - 1 : i;
  };

  await mkdirOwned(root, chown);
  const hosts = Array.from({ length: 3 }, (_, i) => seededBytes(6, opts.seed, 'host', i).toString('hex'));

  // --- folders
  const userHome = (u: string) => { const [l, d] = u.split('@') as [string, string]; return path.join(root, d, l); };
  const userMaildir = (u: string) => path.join(userHome(u), sub);
  for (const u of users) {
    const md = userMaildir(u);
    await mkdirOwned(path.join(root, u.split('@')[1]!), chown);
    await mkdirOwned(userHome(u), chown);
    for (const f of MAILDIR_FOLDERS) {
      const dir = path.join(md, f.name);
      await mkdirOwned(dir, chown);
      for (const s of ['cur', 'new', 'tmp']) await mkdirOwned(path.join(dir, s), chown);
    }
  }

  // --- plan + write messages (plan is generated lazily, in PRNG order, so memory stays bounded)
  const uidlists = new Map<string, { base: string; time: number }[]>();
  const userUsage = new Map<string, { bytes: number; count: number }>();
  let files = 0;
  let bytes = 0;
  let planned = 0;
  let index = 0;
  const meanMsg = maxMsg > minMsg ? (maxMsg - minMsg) / Math.log(maxMsg / minMsg) : minMsg;
  const timeStep = YEAR / Math.max(1, opts.totalBytes / (meanMsg + attachmentFraction * attachmentBytes));
  let clock = EPOCH;

  function* plans(): Generator<MessagePlan> {
    while (planned < opts.totalBytes) {
      const ui = choose(userCum);
      const fi = choose(folderCum);
      const user = users[ui]!;
      const folder = MAILDIR_FOLDERS[fi]!;
      const attachment = attachmentFraction > 0 && rnd() < attachmentFraction;
      // log-uniform size between min and max: many small, some larger
      let size = Math.round(minMsg * Math.pow(maxMsg / minMsg, rnd()));
      if (attachment) size += Math.round(attachmentBytes * (0.5 + rnd()));
      clock += timeStep * (0.2 + rnd() * 1.6);
      const time = Math.floor(clock);
      const isNew = folder.name === '' && rnd() < 0.06;
      let flags = 'S';
      const r = rnd();
      if (folder.name === '.Drafts' || folder.name === '.Entw&APw-rfe') flags = 'DS';
      else if (folder.name === '.Trash') flags = r < 0.3 ? 'ST' : 'S';
      else if (folder.name === '') flags = r < 0.1 ? '' : r < 0.25 ? 'RS' : r < 0.3 ? 'FS' : r < 0.33 ? 'a' + 'S' : 'S';
      const outgoing = folder.name === '.Sent' || folder.name === '.Sent Items' || folder.name === '.Drafts' || folder.name === '.Entw&APw-rfe';
      planned += size;
      yield {
        folder: path.join(userMaildir(user), folder.name),
        user,
        sub: isNew ? 'new' : 'cur',
        flags: sortFlags(flags),
        size,
        attachment,
        time,
        usec: int(rnd, 0, 999999),
        pid: int(rnd, 100, 65000),
        host: hosts[Math.min(hosts.length - 1, Math.floor(((time - EPOCH) / YEAR) * hosts.length))] ?? hosts[0]!,
        key: `${opts.seed}:msg:${index++}`,
        outgoing,
      };
    }
  }

  await runPool(plans(), concurrency, async (m) => {
    const data = buildMessage(m, plainText);
    const size = data.length;
    const vsize = size + countLF(data);
    const base = baseName(m, size, vsize);
    // bookkeeping before the await, so the uidlist order is the plan order (deterministic)
    let list = uidlists.get(m.folder);
    if (!list) uidlists.set(m.folder, (list = []));
    list.push({ base, time: m.time });
    const usage = userUsage.get(m.user) ?? { bytes: 0, count: 0 };
    usage.bytes += size;
    usage.count += 1;
    userUsage.set(m.user, usage);
    files += 1;
    bytes += size;
    await writeOwned(path.join(m.folder, m.sub, fileName(base, m.sub, m.flags)), data, m.time, chown);
  });

  // --- dovecot metadata
  for (const u of users) {
    const md = userMaildir(u);
    for (const f of MAILDIR_FOLDERS) {
      const dir = path.join(md, f.name);
      const list = uidlists.get(dir) ?? [];
      const uidvalidity = EPOCH - 86400 * (1 + (MAILDIR_FOLDERS.indexOf(f) + users.indexOf(u) * 7) % 300);
      const guid = seededBytes(16, opts.seed, 'guid', u, f.name).toString('hex');
      const ul = uidlistText(uidvalidity, list.length + 1, guid, list.map((e, i) => ({ uid: i + 1, base: e.base })));
      const lastTime = list.length ? list[list.length - 1]!.time : EPOCH;
      await writeOwned(path.join(dir, 'dovecot-uidlist'), ul, lastTime, chown);
      await writeOwned(path.join(dir, 'dovecot-keywords'), KEYWORDS, lastTime, chown);
      files += 2;
      bytes += Buffer.byteLength(ul) + KEYWORDS.length;
      if (f.name !== '') {
        await writeOwned(path.join(dir, 'maildirfolder'), '', lastTime, chown);
        files += 1;
      }
    }
    const usage = userUsage.get(u) ?? { bytes: 0, count: 0 };
    const quota = `0S,0C\n${usage.bytes} ${usage.count}\n`;
    const subs = 'V\t2\n\n' + MAILDIR_FOLDERS.filter((f) => f.name !== '').map((f) => f.display.replace(/\//g, '\t')).join('\n') + '\n';
    await writeOwned(path.join(md, 'maildirsize'), quota, undefined, chown);
    await writeOwned(path.join(md, 'subscriptions'), subs, undefined, chown);
    files += 2;
    bytes += Buffer.byteLength(quota) + Buffer.byteLength(subs);
  }

  return { files, bytes, users };
}

// ---------------------------------------------------------------- mutateMaildir

interface FoundMessage {
  /** Maildir folder (contains cur/new/tmp) */
  folder: string;
  sub: 'cur' | 'new';
  name: string;
  base: string;
  flags: string;
  size: number;
}

async function readdirSafe(dir: string): Promise<Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Every Maildir folder (a folder that has both cur/ and new/) below root, sorted. */
async function findMaildirFolders(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const ents = await readdirSafe(dir);
    const names = new Set(ents.filter((e) => e.isDirectory()).map((e) => e.name));
    if (names.has('cur') && names.has('new')) out.push(dir);
    for (const e of ents) {
      if (e.isDirectory() && e.name !== 'cur' && e.name !== 'new' && e.name !== 'tmp') await walk(path.join(dir, e.name));
    }
  };
  await walk(root);
  return out.sort();
}

function parseName(name: string): { base: string; flags: string } {
  const i = name.indexOf(':2,');
  return i < 0 ? { base: name, flags: '' } : { base: name.slice(0, i), flags: name.slice(i + 3) };
}

function sizeFromName(base: string): number | undefined {
  const m = /,S=(\d+)/.exec(base);
  return m ? Number(m[1]) : undefined;
}

export async function mutateMaildir(root: string, opts: MutateMaildirOptions): Promise<MutateMaildirResult> {
  const rnd = mulberry32(opts.seed ^ 0x5eed1234);
  const chown = isRoot();
  const folders = await findMaildirFolders(root);
  const messages: FoundMessage[] = [];
  let maxTime = EPOCH;
  for (const folder of folders) {
    for (const sub of ['cur', 'new'] as const) {
      const names = (await readdirSafe(path.join(folder, sub))).filter((e) => e.isFile()).map((e) => e.name).sort();
      for (const name of names) {
        const { base, flags } = parseName(name);
        let size = sizeFromName(base);
        if (size === undefined) size = (await fsp.stat(path.join(folder, sub, name))).size;
        messages.push({ folder, sub, name, base, flags, size });
        const t = Number.parseInt(base, 10);
        if (Number.isFinite(t) && t > maxTime) maxTime = t;
      }
    }
  }
  const n = messages.length;
  const nDelete = Math.min(n, Math.round(n * opts.deleteFraction));
  const nRename = Math.min(n - nDelete, Math.round(n * opts.renameFraction));
  const nNew = Math.round(n * opts.newFraction);

  // deterministic partial Fisher-Yates over the sorted list
  const order = messages.map((_, i) => i);
  for (let i = 0; i < Math.min(n, nDelete + nRename); i++) {
    const j = i + Math.floor(rnd() * (n - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const toDelete = order.slice(0, nDelete).map((i) => messages[i]!);
  const toRename = order.slice(nDelete, nDelete + nRename).map((i) => messages[i]!);
  const touched = new Set<string>();
  const concurrency = opts.concurrency ?? 32;

  // deletions (expunge)
  await runPool(toDelete, concurrency, async (m) => {
    await fsp.unlink(path.join(m.folder, m.sub, m.name));
    touched.add(m.folder);
  });

  // flag changes: new/ -> cur/ with S; cur/ S -> RS, RS -> FRS, ... (dovecot keeps flags sorted)
  let renamedBytes = 0;
  await runPool(toRename, concurrency, async (m) => {
    let flags: string;
    if (m.sub === 'new') flags = 'S';
    else if (!m.flags.includes('S')) flags = sortFlags(m.flags + 'S');
    else if (!m.flags.includes('R')) flags = sortFlags(m.flags + 'R');
    else if (!m.flags.includes('F')) flags = sortFlags(m.flags + 'F');
    else flags = m.flags.replace('F', '');
    const to = path.join(m.folder, 'cur', `${m.base}:2,${flags}`);
    await fsp.rename(path.join(m.folder, m.sub, m.name), to);
    renamedBytes += m.size;
    touched.add(m.folder);
  });

  // new mail: one "day" after the newest existing message
  const mailFolders = folders.filter((f) => !/\.(Trash|Junk)$/.test(f));
  const newPlans: MessagePlan[] = [];
  const host = seededBytes(6, opts.seed, 'mutate-host').toString('hex');
  const dayStart = maxTime + 3600;
  // message count per folder, so new mail lands roughly where mail already is
  const perFolder = new Map<string, number>();
  for (const m of messages) perFolder.set(m.folder, (perFolder.get(m.folder) ?? 0) + 1);
  const weights = mailFolders.map((f) => (perFolder.get(f) ?? 0) + 0.5);
  const cumW: number[] = [];
  weights.reduce((s, w, i) => (cumW[i] = s + w), 0);
  const sizes = messages.map((m) => m.size).sort((a, b) => a - b);
  const sizeAt = (q: number) => (sizes.length ? sizes[Math.min(sizes.length - 1, Math.floor(q * sizes.length))]! : 8192);
  for (let k = 0; k < nNew && mailFolders.length; k++) {
    const r = rnd() * cumW[cumW.length - 1]!;
    let fi = cumW.findIndex((x) => r < x);
    if (fi < 0) fi = mailFolders.length - 1;
    const folder = mailFolders[fi]!;
    const outgoing = /\.(Sent|Sent Items|Drafts|Entw&APw-rfe)$/.test(folder);
    const rel = path.relative(root, folder).split(path.sep);
    const user = rel.length >= 2 ? `${rel[1]}@${rel[0]}` : 'user@example.com';
    const isNew = !outgoing && rnd() < 0.5;
    newPlans.push({
      folder,
      user,
      sub: isNew ? 'new' : 'cur',
      flags: outgoing ? (/Drafts|Entw/.test(folder) ? 'DS' : 'S') : 'S',
      // same size distribution as what is already there
      size: Math.max(600, Math.round(sizeAt(rnd()) * (0.8 + rnd() * 0.4))),
      attachment: false,
      time: Math.floor(dayStart + (k / Math.max(1, nNew)) * 86400),
      usec: int(rnd, 0, 999999),
      pid: int(rnd, 100, 65000),
      host,
      key: `${opts.seed}:new:${k}`,
      outgoing,
    });
  }
  let newBytes = 0;
  const added = new Map<string, { base: string; i: number }[]>();
  await runPool(newPlans.map((p, i) => ({ p, i })), concurrency, async ({ p, i }) => {
    const data = buildMessage(p, false);
    const base = baseName(p, data.length, data.length + countLF(data));
    let l = added.get(p.folder);
    if (!l) added.set(p.folder, (l = []));
    l.push({ base, i });
    newBytes += data.length;
    touched.add(p.folder);
    await writeOwned(path.join(p.folder, p.sub, fileName(base, p.sub, p.flags)), data, p.time, chown);
  });

  // rewrite dovecot-uidlist of touched folders: keep surviving uids, append new ones
  for (const folder of [...touched].sort()) {
    const ulPath = path.join(folder, 'dovecot-uidlist');
    let header = { v: EPOCH, next: 1, guid: seededBytes(16, opts.seed, 'guid', folder).toString('hex') };
    const byBase = new Map<string, number>();
    try {
      const text = await fsp.readFile(ulPath, 'utf8');
      const lines = text.split('\n');
      const h = /^3 V(\d+) N(\d+) G([0-9a-f]+)/.exec(lines[0] ?? '');
      if (h) header = { v: Number(h[1]), next: Number(h[2]), guid: h[3]! };
      for (const line of lines.slice(1)) {
        const m = /^(\d+)(?: [^:]*)? :(.+)$/.exec(line);
        if (m) byBase.set(m[2]!, Number(m[1]));
      }
    } catch {
      /* no uidlist yet */
    }
    const present = new Set<string>();
    for (const sub of ['cur', 'new']) {
      for (const e of await readdirSafe(path.join(folder, sub))) if (e.isFile()) present.add(parseName(e.name).base);
    }
    const entries: { uid: number; base: string }[] = [];
    for (const [base, uid] of byBase) if (present.has(base)) entries.push({ uid, base });
    entries.sort((a, b) => a.uid - b.uid);
    let next = Math.max(header.next, (entries[entries.length - 1]?.uid ?? 0) + 1);
    const newOnes = (added.get(folder) ?? []).sort((a, b) => a.i - b.i);
    for (const a of newOnes) entries.push({ uid: next++, base: a.base });
    // anything present but unknown (e.g. written by someone else) gets a uid too
    const known = new Set(entries.map((e) => e.base));
    for (const base of [...present].sort()) if (!known.has(base)) entries.push({ uid: next++, base });
    await writeOwned(ulPath, uidlistText(header.v, next, header.guid, entries), dayStart + 86400, chown);
  }

  // maildirsize: dovecot appends "<delta bytes> <delta count>" lines
  const deltas = new Map<string, { bytes: number; count: number }>();
  const maildirRootOf = (folder: string): string => {
    const rel = path.relative(root, folder).split(path.sep);
    const depth = rel.findIndex((p) => p.startsWith('.'));
    return depth < 0 ? folder : path.join(root, ...rel.slice(0, depth));
  };
  for (const m of toDelete) {
    const d = deltas.get(maildirRootOf(m.folder)) ?? { bytes: 0, count: 0 };
    d.bytes -= m.size; d.count -= 1; deltas.set(maildirRootOf(m.folder), d);
  }
  for (const p of newPlans) {
    const d = deltas.get(maildirRootOf(p.folder)) ?? { bytes: 0, count: 0 };
    d.count += 1; deltas.set(maildirRootOf(p.folder), d);
  }
  for (const [base, list] of added) {
    const d = deltas.get(maildirRootOf(base))!;
    for (const a of list) d.bytes += sizeFromName(a.base) ?? 0;
  }
  for (const [mdRoot, d] of [...deltas].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const f = path.join(mdRoot, 'maildirsize');
    try {
      await fsp.access(f);
      await fsp.appendFile(f, `${d.bytes} ${d.count}\n`);
    } catch {
      /* no quota file there */
    }
  }

  return { newBytes, newFiles: newPlans.length, deleted: toDelete.length, renamed: toRename.length, renamedBytes };
}
