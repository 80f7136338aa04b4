/**
 * Runs the built CLI in a real pseudo-terminal, as a person at a terminal would: util-linux
 * `script` gives it a pty for stdin, stdout and stderr (CI unset, TERM=xterm, 200 columns), and
 * keys written to it go through the pty's line discipline, so Ctrl-C (`\x03`) becomes a real
 * SIGINT for the CLI, or a key for a prompt that reads in raw mode.
 */
import { spawnSync } from 'node:child_process';
import { type RunningCli, startProcess } from '../safety/support.js';
import { BIN } from './cli.js';

/** Whether util-linux `script` can be run. Tests fail (never skip) when it cannot. */
export const HAS_SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
export const NO_SCRIPT = 'util-linux `script` is missing: install it (Debian: apt-get install bsdutils) to run the terminal tests';

export const CTRL_C = '\u0003';

const ESC = String.fromCharCode(27);

/** The text a terminal shows, without colour and cursor escapes and carriage returns. */
export const stripTerminal = (s: string): string => s.replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '').replace(/\r/g, '');

/** The names some tests use for the same two facts. */
export const hasScript = HAS_SCRIPT;
export const MISSING_SCRIPT = NO_SCRIPT;

/** Shell-quotes one argument for `script -c`. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface TerminalCli extends RunningCli {
  /** Everything the terminal received so far, escapes removed. */
  screen(): string;
  /** Types keys (`CTRL_C`, `'y\r'`). */
  press(keys: string): void;
}

/**
 * Starts `datafix ARGS` in a pseudo-terminal of `columns` columns; with `script`, that Node
 * script (a module file) with ARGS instead of the CLI.
 */
export function inTerminal(
  args: readonly string[],
  options: {
    cwd: string;
    env?: Readonly<Record<string, string | undefined>>;
    columns?: number;
    timeoutMs?: number;
    script?: string;
    /** The CLI's stdout goes to this file (as `datafix … --json > out.json` at a terminal). */
    stdoutTo?: string;
  },
): TerminalCli {
  if (!HAS_SCRIPT) throw new Error(NO_SCRIPT);
  // `exec`: the CLI is the shell itself, in the terminal's foreground process group.
  const argv = [process.execPath, options.script ?? BIN, ...args];
  const command = `stty cols ${options.columns ?? 200} rows 50 && exec ${argv.map(q).join(' ')}${options.stdoutTo ? ` > ${q(options.stdoutTo)}` : ''}`;
  const run = startProcess('script', ['-qefc', command, '/dev/null'], {
    cwd: options.cwd,
    env: { TERM: 'xterm', ...options.env },
    ci: false,
    timeoutMs: options.timeoutMs ?? 60_000,
  });
  return {
    ...run,
    screen: () => stripTerminal(run.stdout()),
    press: (keys) => {
      run.child.stdin.write(keys);
    },
  };
}

/**
 * Presses Ctrl-C in `run` and checks the words of a stop before anything was written: exit 130,
 * `interrupted: nothing was written.`, no internal error. Returns the screen for further checks.
 */
export async function ctrlCNothingWritten(run: TerminalCli): Promise<string> {
  run.press(CTRL_C);
  const r = await run.done;
  const screen = run.screen();
  if (r.code !== 130) throw new Error(`expected exit 130, got ${r.code}; the screen:\n${screen}`);
  if (!screen.includes('interrupted: nothing was written.')) throw new Error(`the screen does not say nothing was written:\n${screen}`);
  if (screen.includes('internal error')) throw new Error(`the screen shows an internal error:\n${screen}`);
  return screen;
}
