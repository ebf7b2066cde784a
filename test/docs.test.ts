// What the README promises must stay true: the exit-code table is the one the code uses, and the
// two commands a newcomer pastes exist and are what CI runs.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT_DOCS } from '../src/cli/exit-codes.js';
import { ROOT } from './support/cli.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

test("README's exit-code table is the code's table", () => {
  const block = /<!-- exit-codes:start -->\n([\s\S]*?)<!-- exit-codes:end -->/.exec(readme)?.[1];
  assert.ok(block, 'README has the exit-codes markers');
  const want = ['| code | meaning |', '|---|---|', ...EXIT_DOCS.map(([c, m]) => `| ${c} | ${m} |`)].join('\n') + '\n';
  assert.equal(block, want);
});

test('the README commands exist and CI runs the test command', () => {
  for (const cmd of ['bash scripts/demo.sh', 'bash scripts/test.sh']) {
    assert.ok(readme.includes(cmd), cmd);
    assert.ok(existsSync(join(ROOT, cmd.split(' ')[1]!)), cmd);
  }
  assert.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), /bash scripts\/test\.sh/);
  assert.match(readFileSync(join(ROOT, 'scripts/test.sh'), 'utf8'), /npm test/);
});
