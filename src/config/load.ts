// Reads the .env with dotenv's parser (never sourced as shell) and validates it against the
// schema. Every problem is collected and reported at once, one line each.
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'dotenv';
import { UserError } from '../errors.js';
import { configSchema, KEY_DOCS, type Config } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/mailcow-backup/.env';

export interface LoadedConfig {
  path: string;
  config: Config;
  warnings: string[];
}

export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.MAILCOW_BACKUP_CONFIG || DEFAULT_CONFIG_PATH);
}

export function loadConfig(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (run as root)' : `cannot be read (${code})`;
    throw new UserError('config', `${path}: config file ${why}; create it from .env.example or run the installer, or pass --config PATH`);
  }
  const { config, warnings } = parseConfigText(text, path);
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077 && /^\s*(export\s+)?SMTP_PASSWORD\s*=\s*\S/m.test(text)) {
    warnings.push(`${path}: holds secrets but others can read it (mode ${mode.toString(8)}); fix: chmod 600 ${path}`);
  }
  return { path, config, warnings };
}

/** One line per key that is not a config key (the run and the installer's --env-file say the same). */
export function unknownKeyWarnings(raw: Record<string, string>, path: string): string[] {
  const known = new Set(KEY_DOCS.map((k) => k.key));
  return Object.keys(raw)
    .filter((key) => !known.has(key))
    .map((key) => `${path}: unknown key ${key} is ignored (a typo?)`);
}

export function parseConfigText(text: string, path: string): { config: Config; warnings: string[] } {
  const raw = parse(text);
  const warnings = unknownKeyWarnings(raw, path);
  // dotenv gives `KEY=` as "": unset, so the key's default applies (as the bash tool did).
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v.trim() !== ''));
  // jitless: zod would compile a fast path for the object (new Function) on this one parse: it
  // costs more than it saves, before the daily run's lock.
  const result = configSchema.safeParse(given, { jitless: true });
  if (!result.success) {
    // One line per key: a value can break several rules at once (relative and too long), and
    // the first one zod reports is the one to fix first.
    const byKey = new Map<string, string>();
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? '');
      if (byKey.has(key)) continue;
      const doc = KEY_DOCS.find((k) => k.key === key);
      const example = doc ? ` (example: ${key}=${doc.example})` : '';
      byKey.set(key, `${path}: ${key} ${issue.message}${example}`);
    }
    const lines = [...byKey.values()];
    throw new UserError('config', `${path}: ${lines.length} configuration problem${lines.length === 1 ? '' : 's'}`, lines);
  }
  return { config: result.data, warnings };
}
