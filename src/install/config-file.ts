// The config: /etc/mailcow-backup/ (0700) and .env (0600), written from .env.example with the
// answers. An existing .env is never overwritten: it is validated, its modes are tightened, and
// keys it does not have yet are reported (their defaults apply).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse } from 'dotenv';
import { exampleLine, renderEnvExample } from '../config/env-example.js';
import { parseConfigText } from '../config/load.js';
import { configSchema, KEY_DOCS, type Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { rooted } from './layout.js';
import type { InstallOptions } from './options.js';
import { flagFor } from './options.js';
import type { Asker } from './prompts.js';
import { modeText, type Ops } from './ops.js';

export interface ConfigResult {
  config: Config;
  /** The real path of the .env (below --root). */
  realPath: string;
  created: boolean;
}

const shape = configSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean; error?: { issues: { message: string }[] } } }>;

export function validateValue(key: string, value: string): true | string {
  const s = shape[key];
  if (!s) return true;
  const r = s.safeParse(value);
  return r.success ? true : (r.error?.issues[0]?.message ?? 'is not valid');
}

const docOf = (key: string) => KEY_DOCS.find((d) => d.key === key)!;

/** A value as dotenv reads it back unchanged (checked by parsing it again). */
export function envValue(key: string, value: string): string {
  const candidates = /^[A-Za-z0-9_./:@,+=*-]*$/.test(value) ? [value] : [`'${value}'`, `"${value}"`, `\`${value}\``];
  for (const c of candidates) if (parse(`${key}=${c}\n`)[key] === value) return c;
  throw new UserError('config', `the value of ${key} cannot be written to a .env file (it mixes all quote characters); choose another`);
}

/** .env.example with the given values filled in; keys not given keep their example line. */
export function renderEnv(values: Record<string, string>): string {
  const lines = renderEnvExample().split('\n');
  for (const [key, value] of Object.entries(values)) {
    const d = docOf(key);
    const i = lines.indexOf(exampleLine(d));
    if (i < 0) throw new Error(`internal: no line for ${key} in .env.example`);
    lines[i] = `${key}=${envValue(key, value)}`;
  }
  lines[0] = '# mailcow cold standby: configuration (mode 0600). Written by the installer from .env.example;';
  lines[1] = '# the installer never overwrites it: edit it by hand, then run: backup-to-hetzner check';
  return lines.join('\n');
}

interface Question {
  key: string;
  message: string;
}

const QUESTIONS: Question[] = [
  { key: 'HETZNER_HOST', message: 'Storage Box host (uNNNNNN.your-storagebox.de):' },
  { key: 'HETZNER_USER', message: 'Storage Box user (uNNNNNN, or a sub-account uNNNNNN-subN):' },
  { key: 'HETZNER_PORT', message: 'SSH port of the box (23 speaks rsync):' },
  { key: 'HETZNER_REMOTE_PATH', message: 'Folder on the box for the backups:' },
  { key: 'SSH_KEY_PATH', message: 'SSH private key for the box (generated if it does not exist):' },
  { key: 'MAILCOW_PATH', message: 'mailcow-dockerized folder:' },
  { key: 'REMOTE_RETENTION_DAYS', message: 'Delete backups on the box after how many days (0 keeps all)?' },
];

/** Asks what was not given; returns the values to write (given ones and answers). */
export async function gatherValues(
  opts: InstallOptions,
  asker: Asker,
  suggestions: Record<string, string>,
  extraChecks: Record<string, (v: string) => true | string> = {},
): Promise<Record<string, string>> {
  const check = (key: string, v: string) => {
    const ok = validateValue(key, v);
    return ok === true ? (extraChecks[key]?.(v) ?? true) : ok;
  };
  const values: Record<string, string> = { ...opts.given };
  for (const key of Object.keys(values)) {
    const ok = validateValue(key, values[key]!);
    if (ok !== true) throw new UserError('config', `${key}='${values[key]}' (from ${opts.givenFrom[key]}) ${ok}; e.g. ${key}=${docOf(key).example}`);
  }
  for (const q of QUESTIONS) {
    if (values[q.key] !== undefined) continue;
    const d = docOf(q.key);
    let def: string | undefined = suggestions[q.key] ?? d.defaultText;
    if (q.key === 'HETZNER_USER' && !def) def = /^(u[0-9]+)\./.exec(values.HETZNER_HOST ?? '')?.[1];
    const v = await asker.text({ name: q.key, message: q.message, default: def, validate: (x) => check(q.key, x), flag: flagFor(q.key) });
    values[q.key] = v;
  }
  if (values.EMAIL_NOTIFICATIONS === undefined && values.NOTIFICATION_EMAIL === undefined) {
    if (await asker.confirm({ name: 'EMAIL_NOTIFICATIONS', message: 'Send a report by e-mail after each run?', default: false })) {
      values.EMAIL_NOTIFICATIONS = 'true';
      values.NOTIFICATION_EMAIL = await asker.text({ name: 'NOTIFICATION_EMAIL', message: 'Report to which address?', validate: (x) => validateValue('NOTIFICATION_EMAIL', x), flag: '--email ADDRESS' });
    }
  }
  return values;
}

export interface ConfigParams {
  suggestions: Record<string, string>;
  /** Checks beyond the schema, asked again interactively (e.g. MAILCOW_PATH holds mailcow). */
  extraChecks?: Record<string, (v: string) => true | string>;
  /** Called with the final config before anything is written; throws to stop. */
  verify?: (c: Config) => void;
}

export async function ensureConfig(opts: InstallOptions, asker: Asker, ops: Ops, p: ConfigParams): Promise<ConfigResult> {
  const realPath = rooted(opts.root, opts.configPath);
  const realDir = dirname(realPath);
  if (existsSync(realPath)) {
    const r = await useExisting(opts, ops, realPath);
    p.verify?.(r.config);
    return r;
  }

  const values = await gatherValues(opts, asker, p.suggestions, p.extraChecks);
  const text = renderEnv(values);
  const { config } = parseConfigText(text, opts.configPath);
  p.verify?.(config);
  await ops.mkdir(realDir, 0o700);
  await ops.writeFile(realPath, text, 0o600);
  ops.out.ok(`${ops.dryRun ? 'would create' : 'created'} ${realPath} (0600) in ${realDir} (0700)`);
  return { config, realPath, created: true };
}

async function useExisting(opts: InstallOptions, ops: Ops, realPath: string): Promise<ConfigResult> {
  const text = readFileSync(realPath, 'utf8');
  let config: Config;
  let warnings: string[];
  try {
    ({ config, warnings } = parseConfigText(text, realPath));
  } catch (e) {
    if (e instanceof UserError) {
      throw new UserError('config', `${realPath} exists but is not valid; the installer never overwrites it: fix it and run the installer again`, e.details);
    }
    throw e;
  }
  ops.out.ok(`${realPath} exists: kept as it is (never overwritten)`);
  for (const w of warnings) ops.out.warn(w);
  const raw = parse(text);
  // Keys the file does not mention at all, not even commented out: new since it was written.
  const newKeys = KEY_DOCS.filter((d) => !new RegExp(`^[ \\t]*#?[ \\t]*(export[ \\t]+)?${d.key}[ \\t]*=`, 'm').test(text)).map((d) => d.key);
  if (newKeys.length) {
    ops.out.info(`new keys it does not mention (their defaults apply; .env.example explains them): ${newKeys.join(', ')}`);
  }
  const ignored = Object.entries(opts.given).filter(([k, v]) => (raw[k] ?? '') !== v);
  for (const [k] of ignored) ops.out.warn(`${k} from ${opts.givenFrom[k]} is ignored: ${realPath} exists and is never overwritten; edit it there`);
  const realDir = dirname(realPath);
  const dirMode = statSync(realDir).mode & 0o777;
  if (dirMode !== 0o700) {
    await ops.chmod(realDir, 0o700);
    ops.out.ok(`${realDir}: mode ${modeText(dirMode)} tightened to 0700`);
  }
  const fileMode = statSync(realPath).mode & 0o777;
  if (fileMode & 0o077) {
    await ops.chmod(realPath, 0o600);
    ops.out.ok(`${realPath}: mode ${modeText(fileMode)} tightened to 0600`);
  }
  return { config, realPath, created: false };
}
