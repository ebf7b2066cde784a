// The tool's version, read once from package.json (two folders up from the compiled file).
import { readFileSync } from 'node:fs';

export const PACKAGE_ROOT = new URL('../../', import.meta.url).pathname;

export const TOOL_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();
