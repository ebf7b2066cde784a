// `.env.example` and the README's table of keys, rendered from KEY_DOCS (the schema's docs).
// scripts/gen-config-docs.ts writes them; test/config-docs.test.ts fails when they drift.
import { KEY_DOCS, type KeyDoc } from './schema.js';

export const TABLE_START = '<!-- config-table:start -->';
export const TABLE_END = '<!-- config-table:end -->';

/** Groups in the order their first key appears in KEY_DOCS. */
export function groupsOf(docs: readonly KeyDoc[] = KEY_DOCS): [group: string, keys: KeyDoc[]][] {
  const groups = new Map<string, KeyDoc[]>();
  for (const d of docs) {
    const list = groups.get(d.group) ?? [];
    list.push(d);
    groups.set(d.group, list);
  }
  return [...groups.entries()];
}

/** How a key is written in .env.example: `KEY=default`, `KEY=` (required) or `# KEY=example` (optional). */
export function exampleLine(d: KeyDoc): string {
  if (d.defaultText !== undefined) return `${d.key}=${d.defaultText}`;
  if (d.required) return `${d.key}=`;
  return `# ${d.key}=${d.example}`;
}

export function renderEnvExample(docs: readonly KeyDoc[] = KEY_DOCS): string {
  const out: string[] = [
    '# mailcow cold standby: configuration (installed as /etc/mailcow-backup/.env, mode 0600).',
    '# Generated from src/config/schema.ts by scripts/gen-config-docs.ts: edit the schema, not this file.',
    '# Read with dotenv, never sourced by a shell. An empty value means "unset": the default applies.',
    '# Keys of the earlier bash tool (install.sh) keep their meaning; its .env works as it is.',
  ];
  for (const [group, keys] of groupsOf(docs)) {
    out.push('', `# ===== ${group} =====`);
    for (const d of keys) {
      out.push('');
      const notes = [d.required ? 'Required.' : '', d.secret ? 'Secret: keep this file 0600.' : ''].filter(Boolean).join(' ');
      out.push(`# ${d.help}${notes ? ` ${notes}` : ''}`);
      if (d.defaultText === undefined || d.example !== d.defaultText) {
        if (d.required || d.defaultText !== undefined) out.push(`# Example: ${d.key}=${d.example}`);
      }
      out.push(exampleLine(d));
    }
  }
  return out.join('\n') + '\n';
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The README's table: one row per key, grouped, with default (or "required") and example. */
export function renderConfigTable(docs: readonly KeyDoc[] = KEY_DOCS): string {
  const rows = ['| Key | Default | Meaning | Example |', '|---|---|---|---|'];
  for (const [group, keys] of groupsOf(docs)) {
    rows.push(`| **${cell(group)}** | | | |`);
    for (const d of keys) {
      const def = d.required ? '*required*' : d.defaultText !== undefined ? (d.defaultText === '' ? '*(empty)*' : `\`${cell(d.defaultText)}\``) : '*(unset)*';
      rows.push(`| \`${d.key}\` | ${def} | ${cell(d.help)}${d.secret ? ' *(secret)*' : ''} | \`${cell(d.example)}\` |`);
    }
  }
  return rows.join('\n') + '\n';
}

/** README text with the table between the markers replaced; undefined when the markers are absent. */
export function replaceConfigTable(readme: string, table: string = renderConfigTable()): string | undefined {
  const a = readme.indexOf(TABLE_START);
  const b = readme.indexOf(TABLE_END);
  if (a < 0 || b < 0 || b < a) return undefined;
  return `${readme.slice(0, a + TABLE_START.length)}\n${table}${readme.slice(b)}`;
}

/** The table currently between the markers (for the drift test); undefined without markers. */
export function configTableIn(readme: string): string | undefined {
  const a = readme.indexOf(TABLE_START);
  const b = readme.indexOf(TABLE_END);
  if (a < 0 || b < 0 || b < a) return undefined;
  return readme.slice(a + TABLE_START.length, b).replace(/^\n/, '');
}
