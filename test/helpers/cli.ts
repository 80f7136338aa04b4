/**
 * Runs the real CLI (`node bin/datafix.js`, which loads the build in dist/) as a user would, with
 * no terminal attached and CI=true, and returns what a user would see: exit code, stdout, stderr.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TIME_SCALE } from './time-scale.js';
import { noteChildStderr } from './warnings.js';

export { TIME_SCALE };

export const BIN = fileURLToPath(new URL('../../bin/datafix.js', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const BUILT_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  /** Exit status; a signal death is reported as 128 + signal number like a shell would. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Extra environment variables; `undefined` removes a variable inherited from the test process. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Working directory. By default a fresh temp dir, removed when the CLI exits, so the journals,
   * state and lock files a run leaves in `.datafix/` never land in the repository; relative paths
   * among `args` that name files of the repository are then passed as absolute paths.
   */
  readonly cwd?: string;
  /** Text written to the CLI's stdin (stdin is closed either way). */
  readonly input?: string;
  /** Kill the process after this long (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * Runs the CLI under `ulimit -f` (RLIMIT_FSIZE) of this many KiB: a write past it comes back
   * short, then fails with EFBIG, as on a full disk (Node ignores SIGXFSZ).
   */
  readonly fileSizeLimitKiB?: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Spawns the CLI asynchronously (so that tests in one file can still overlap their waits) and
 * resolves when it exits. Never rejects on a non-zero exit: the exit code is the result.
 */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  if (!existsSync(BUILT_MAIN)) {
    throw new Error(`${BUILT_MAIN} is missing: build first with \`npx tsc -p tsconfig.build.json\``);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  // The CLI must behave as under CI: no task list, no colours, plain lines.
  env.CI = 'true';
  env.NO_COLOR = '1';
  delete env.FORCE_COLOR;
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const ownCwd = options.cwd === undefined ? mkdtempSync(join(tmpdir(), 'datafix-cli-')) : undefined;
  // The first argument is the command: `test` must stay `test`, not become the repository's test/.
  const argv = ownCwd
    ? args.map((a, i) => (i > 0 && !a.startsWith('-') && !isAbsolute(a) && existsSync(join(REPO_ROOT, a)) ? join(REPO_ROOT, a) : a))
    : args;
  const removeOwnCwd = () => {
    if (ownCwd) rmSync(ownCwd, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    const [command, commandArgs] =
      options.fileSizeLimitKiB === undefined
        ? [process.execPath, [BIN, ...argv]]
        : // bash counts -f in 1024-byte blocks.
          ['bash', ['-c', `ulimit -f ${options.fileSizeLimitKiB} && exec "$0" "$@"`, process.execPath, BIN, ...argv]];
    const child = spawn(command, commandArgs, {
      cwd: ownCwd ?? (options.cwd as string),
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.timeoutMs ?? 30_000) * TIME_SCALE);
    child.on('error', (err) => {
      clearTimeout(timer);
      removeOwnCwd();
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      removeOwnCwd();
      noteChildStderr(`datafix ${args.join(' ')}`, stderr);
      resolve({ code: code ?? 128 + (SIGNALS[signal ?? ''] ?? 0), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
