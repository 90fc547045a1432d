// Owns the description of where a benchmark ran: CPU, cores, memory, Node, OS and git commit.
// Must never fail a run: anything it cannot read is reported as unknown.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  node: string;
  platform: string;
  kernel: string;
  loadAverage: number[];
  gitCommit: string;
  gitDirty: boolean | null;
}

function git(args: string[], cwd: string): string | null {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function cpuModel(): string {
  const model = os.cpus()[0]?.model;
  if (model && model.trim() !== '') return model.trim();
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return 'unknown';
}

export function machineInfo(repoRoot: string): MachineInfo {
  const status = git(['status', '--porcelain', '--untracked-files=no'], repoRoot);
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    gitCommit: git(['rev-parse', 'HEAD'], repoRoot) ?? 'unknown',
    gitDirty: status === null ? null : status !== '',
  };
}
