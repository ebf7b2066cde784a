// .env.example and the README's table of keys are generated from the schema
// (scripts/gen-config-docs.ts); these tests fail when either has drifted from it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import { configTableIn, renderConfigTable, renderEnvExample, replaceConfigTable, TABLE_END, TABLE_START } from '../src/config/env-example.js';
import { parseConfigText } from '../src/config/load.js';
import { KEY_DOCS } from '../src/config/schema.js';
import { findPackageRoot } from '../src/install/layout.js';

const ROOT = findPackageRoot();
const REGENERATE = 'regenerate with: npm run build && node dist/scripts/gen-config-docs.js';

describe('config docs', () => {
  it('.env.example is what renderEnvExample() gives', () => {
    const file = readFileSync(join(ROOT, '.env.example'), 'utf8');
    assert.equal(file, renderEnvExample(), `.env.example differs from the schema; ${REGENERATE}`);
  });

  it("README's table of keys between the markers is what renderConfigTable() gives (if the markers exist)", (t) => {
    const readmePath = join(ROOT, 'README.md');
    const readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : '';
    const table = configTableIn(readme);
    if (table === undefined) return t.skip(`README.md has no ${TABLE_START} / ${TABLE_END} markers`);
    assert.equal(table, renderConfigTable(), `README.md's table of keys differs from the schema; ${REGENERATE}`);
  });

  it('mentions every key once, with its help, and parses as a valid config once the required keys are filled', () => {
    const text = renderEnvExample();
    for (const d of KEY_DOCS) {
      assert.equal(text.match(new RegExp(`^(# )?${d.key}=`, 'gm'))?.length, 1, d.key);
      assert.ok(text.includes(`# ${d.help}`), `help of ${d.key}`);
    }
    const required = KEY_DOCS.filter((d) => d.required);
    assert.deepEqual(required.map((d) => d.key), ['HETZNER_HOST', 'HETZNER_USER']);
    assert.throws(() => parseConfigText(text, '.env.example'), /2 configuration problems/);
    const filled = required.reduce((s, d) => s.replace(new RegExp(`^${d.key}=$`, 'm'), `${d.key}=${d.example}`), text);
    const { config, warnings } = parseConfigText(filled, '.env.example');
    assert.deepEqual(warnings, []);
    for (const d of KEY_DOCS.filter((k) => k.defaultText !== undefined)) assert.equal(parse(filled)[d.key], d.defaultText, d.key);
    assert.equal(config.HETZNER_PORT, 23);
    // optional keys are commented out with their example
    assert.match(text, /^# SMTP_PASSWORD=secret$/m);
  });

  it('replaces only what is between the markers', () => {
    const readme = `# x\n\n${TABLE_START}\nold\n${TABLE_END}\n\nafter\n`;
    const out = replaceConfigTable(readme, '| a |\n')!;
    assert.equal(out, `# x\n\n${TABLE_START}\n| a |\n${TABLE_END}\n\nafter\n`);
    assert.equal(configTableIn(out), '| a |\n');
    assert.equal(replaceConfigTable('no markers'), undefined);
  });
});
