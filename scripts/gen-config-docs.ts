// Writes .env.example from the schema (src/config/schema.ts) and the README's table of keys:
// between <!-- config-table:start --> and <!-- config-table:end --> in README.md when those
// markers exist, otherwise printed to stdout for pasting. Run: npm run build && node dist/scripts/gen-config-docs.js
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigTable, renderEnvExample, replaceConfigTable } from '../src/config/env-example.js';
import { findPackageRoot } from '../src/install/layout.js';

const root = findPackageRoot();
const envExample = join(root, '.env.example');
writeFileSync(envExample, renderEnvExample());
process.stderr.write(`wrote ${envExample}\n`);

const table = renderConfigTable();
const readmePath = join(root, 'README.md');
const readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : undefined;
const updated = readme === undefined ? undefined : replaceConfigTable(readme, table);
if (updated !== undefined) {
  if (updated !== readme) writeFileSync(readmePath, updated);
  process.stderr.write(`${updated === readme ? 'unchanged' : 'updated'}: the table of keys in ${readmePath}\n`);
} else {
  process.stdout.write(table);
  process.stderr.write('README.md has no config-table markers: the table above is for pasting\n');
}
