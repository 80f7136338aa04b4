/**
 * The question a live command asks in a terminal before it writes (`[y/N]`), shared by `run`,
 * `undo`, `apply` and `runs prune`. Runs without a terminal (pipes, CI, cron) never ask and never
 * read stdin.
 */

/** Whether a person is at a terminal to answer: stdin and stderr are TTYs and CI is not set. */
export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI;
}

/** What a person answered: y/yes; anything else, Enter or Ctrl-D; Ctrl-C or a stop signal. */
export type Answer = 'yes' | 'no' | 'interrupted';

export interface ConfirmOptions {
  /** Aborted by a stop signal (SIGINT, SIGTERM, SIGHUP) while the question waits: `interrupted`. */
  readonly signal?: AbortSignal;
  /**
   * Called for Ctrl-C typed at the question: readline reads the terminal in raw mode, so the key
   * arrives as its own event, not as the process's SIGINT; the command's stop handler hears it here.
   */
  readonly onInterrupt?: () => void;
}

/**
 * Asks `question` on stderr and reads one line from stdin. `yes` for y/yes (any case); `no` for
 * anything else, Enter included, and for the end of input (Ctrl-D): nothing was agreed to, as with
 * "n". `interrupted` for Ctrl-C or a stop signal at the question: the caller then writes nothing
 * and exits 130.
 */
export async function confirm(question: string, options: ConfirmOptions = {}): Promise<Answer> {
  if (options.signal?.aborted) return 'interrupted';
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  let settle: (a: Answer) => void = () => {};
  const onAbort = () => settle('interrupted');
  try {
    return await new Promise<Answer>((resolve) => {
      let settled = false;
      settle = (a) => {
        if (settled) return;
        settled = true;
        // The cursor is still on the question's line after Ctrl-C or Ctrl-D: the next line starts fresh.
        if (a !== 'yes' && a !== 'no') process.stderr.write('\n');
        resolve(a);
      };
      rl.once('SIGINT', () => {
        options.onInterrupt?.();
        settle('interrupted');
      });
      rl.once('close', () => {
        if (!settled) process.stderr.write('\n');
        settle('no');
      });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      rl.question(question, (answer) => settle(/^y(es)?$/i.test(answer.trim()) ? 'yes' : 'no'));
    });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    rl.close();
  }
}

/**
 * What a command says after the question: `yes` goes on (undefined); otherwise the line for the
 * person (stderr) and the exit code: 0 for no (and Ctrl-D), 130 for Ctrl-C.
 */
export function declined(answer: Answer): { readonly message: string; readonly exit: number } | undefined {
  if (answer === 'yes') return undefined;
  return answer === 'no'
    ? { message: 'cancelled: nothing was written', exit: 0 }
    : { message: 'interrupted: nothing was written', exit: 130 };
}
