// The shape of bench-results/*.json (stable keys, so runs can be compared).
import type { Change, HashRefs } from './references.js';
import type { PeerRun } from './peers.js';
import type { RunMeasure } from './tool.js';
import type { VerifyMethodRefs } from './verify-methods.js';
import type { RtoCase } from './rto.js';
import type { HourlyResult } from './hourly.js';
import type { ArchivesResult } from './archives.js';

export interface BenchResult {
  version: 1;
  at: string;
  meta: {
    cpu: string;
    cores: number;
    memGiB: number;
    os: string;
    node: string;
    rsync: string;
    borg: string;
    restic: string;
    threads: string;
    link: { method: string; mbit: number };
    nodeStartupMs: number;
    fixture: { bytes: number; files: number; users: number; plainText: boolean; messagesX10: boolean; messagesX30?: boolean; ms: number; otherVolumesBytes: number; mailMiB: number };
  };
  runs: Omit<RunMeasure, 'status' | 'stderrTail'>[];
  references: {
    change?: Change;
    fullResend?: { bytes: number; seconds?: number };
    vmailArchiveRsync?: { bytesSent: number; literalBytes: number; archiveBytes: number; archiveSeconds: number };
    hashing?: HashRefs;
    /** The run's verify of run 1's mail: the box's sha256sum against the rsync --checksum fallback. */
    verifyMethods?: VerifyMethodRefs;
  };
  peers: { name: string; version: string; runs: PeerRun[] }[];
  /** Restores measured on the same sandbox after the runs (see scripts/bench/rto.ts). */
  rto?: RtoCase[];
  /** An hour of mail after run 3, then a run between dumps (scripts/bench/hourly.ts). */
  hourly?: HourlyResult;
  /** Issue 19's candidates for the archives, day by day (scripts/bench/archives.ts). */
  archives?: ArchivesResult;
  targets: { target: string; measured: string; ok?: boolean }[];
}
