// Placeholder substitution for the shipped templates (systemd/, logrotate/). Pure: text in, text
// out; a placeholder without a value, or a value that could break a unit file, is an error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPackageRoot } from './layout.js';

export function readTemplate(relPath: string, packageRoot: string = findPackageRoot()): string {
  return readFileSync(join(packageRoot, relPath), 'utf8');
}

export function fillTemplate(name: string, text: string, values: Record<string, string>): string {
  for (const [k, v] of Object.entries(values)) {
    if (/[\n\r\0]/.test(v)) throw new Error(`internal: value for @${k}@ in ${name} contains a line break`);
  }
  const out = text.replace(/@([A-Z][A-Z0-9_]*)@/g, (m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`internal: template ${name} has @${key}@ but no value was given`);
    return v;
  });
  return out;
}
