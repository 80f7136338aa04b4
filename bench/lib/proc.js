/** Child processes, disk flushing and machine facts for the benchmark. */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Runs `node ...args` and resolves with its exit code, stdout, stderr (or sends stderr to
 * `stderrFile`) and wall time from spawn to exit. `json` is the last stdout line parsed, if JSON.
 */
export function runNode(args, { env = process.env, cwd = ROOT, stderrFile } = {}) {
  return new Promise((resolvePromise, reject) => {
    // A run that prints a line per record writes to a file, as a real run's log would.
    const errFd = stderrFile ? openSync(stderrFile, 'w') : undefined;
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', errFd ?? 'pipe'] });
    if (errFd !== undefined) closeSync(errFd);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => {
      stdout += b;
    });
    child.stderr?.on('data', (b) => {
      stderr += b;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const processMs = performance.now() - started;
      const last = stdout.trim().split('\n').pop() ?? '';
      let json;
      try {
        json = JSON.parse(last);
      } catch {
        json = undefined;
      }
      resolvePromise({ code, stdout, stderr, processMs, json });
    });
  });
}

/** Runs a bench worker; throws with its stderr when it did not print a result. */
export async function runWorker(args, options) {
  const r = await runNode(args, options);
  if (!r.json) throw new Error(`worker ${args.join(' ')} exited ${r.code} without a result:\n${r.stderr}${r.stdout}`);
  return { ...r.json, processMs: r.processMs };
}

/** Flushes a file and then everything else dirty, so one side's writes are not paid by the next. */
export function flushToDisk(file) {
  if (file && existsSync(file)) {
    const fd = openSync(file, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  spawnSync('sync', { stdio: 'ignore' });
}

export function removeDb(file) {
  for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The filesystem type a path lives on (Linux /proc/mounts), or 'unknown'. */
export function fsTypeOf(path) {
  try {
    const abs = resolve(path);
    let best = { mount: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (!mount) continue;
      const within = abs === mount || abs.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
      if (within && mount.length > best.mount.length) best = { mount, type };
    }
    return best.type;
  } catch {
    return 'unknown';
  }
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
  };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
