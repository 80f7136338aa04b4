/**
 * Runs the CLI in a real pseudo-terminal, as a person at a terminal would: util-linux `script`
 * gives it a pty for stdin, stdout and stderr (CI unset, so it may ask questions). Keys typed by
 * the person are written to `child.stdin`; `\r` is Enter and `\x03` is Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { type RunningCli, startProcess } from '../safety/support.js';
import { BIN } from './cli.js';

/** Whether util-linux `script` is installed (tests assert it, saying what to install). */
export const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
export const MISSING_SCRIPT = 'util-linux `script` is missing: install it (Debian: apt-get install bsdutils)';

const ESC = String.fromCharCode(27);

/** What the person saw: the terminal's output without escape sequences and carriage returns. */
export function stripTerminal(s: string): string {
  return s.replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '').replace(/\r/g, '');
}

/** Shell-quotes one argument for `script -c`. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Starts `datafix ARGS` in a pseudo-terminal in `cwd`. With `stdoutTo`, the CLI's stdout goes to
 * that file instead (as `datafix … --json > out.json` at a terminal): stdin and stderr stay the
 * terminal.
 */
export function inTerminal(
  args: readonly string[],
  options: { cwd: string; env?: Readonly<Record<string, string | undefined>>; stdoutTo?: string; timeoutMs?: number },
): RunningCli {
  const command = [process.execPath, BIN, ...args].map(q).join(' ') + (options.stdoutTo ? ` > ${q(options.stdoutTo)}` : '');
  return startProcess('script', ['-qec', command, '/dev/null'], {
    cwd: options.cwd,
    env: { ...options.env, TERM: 'xterm' },
    ci: false,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
}
