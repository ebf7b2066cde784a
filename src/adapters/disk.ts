// Free space of a folder's filesystem (check-disk-space). Its types describe the CommonJS build
// while Node loads the ES module, so the default export is unwrapped once here.
import * as cds from 'check-disk-space';

type Fn = (path: string) => Promise<{ free: number; size: number }>;
const mod = cds as unknown as { default: Fn | { default: Fn } };
const checkDiskSpace: Fn = typeof mod.default === 'function' ? mod.default : mod.default.default;

export async function freeBytes(path: string): Promise<number> {
  return (await checkDiskSpace(path)).free;
}
