// Worker thread: one hashing lane besides the main thread's (src/adapters/hash.ts); a batch of
// paths per message, joined by NUL (one string to copy, not an array of them).
import { parentPort } from 'node:worker_threads';
import { hashPaths, readBuffer } from './hash-files.js';

const buf = readBuffer();

parentPort!.on('message', (msg: { id: number; paths: string }) => {
  const answer = { id: msg.id, ...hashPaths(msg.paths ? msg.paths.split('\0') : [], buf) };
  parentPort!.postMessage(answer, [answer.digests, answer.sizes.buffer as ArrayBuffer]);
});
