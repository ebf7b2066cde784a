// Free space of a folder's filesystem (check-disk-space). Its types describe the CommonJS build
// while Node loads the ES module, so the default export is unwrapped once here. Loaded on first
// use: the preflight needs it only after the lock is taken (issue 4: start → lock).
type Fn = (path: string) => Promise<{ free: number; size: number }>;

let loaded: Promise<Fn> | undefined;
const loadCheckDiskSpace = () =>
  (loaded ??= import('check-disk-space').then((cds) => {
    const mod = cds as unknown as { default: Fn | { default: Fn } };
    return typeof mod.default === 'function' ? mod.default : mod.default.default;
  }));

export async function freeBytes(path: string): Promise<number> {
  return (await (await loadCheckDiskSpace())(path)).free;
}
