/**
 * The question a live command asks in a terminal before it writes (`[y/N]`), shared by `undo`
 * and `apply`. Runs without a terminal (pipes, CI, cron) never ask and never read stdin.
 */

/** Whether a person is at a terminal to answer: stdin and stderr are TTYs and CI is not set. */
export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI;
}

/**
 * Asks `question` on stderr and reads one line from stdin. `yes` for y/yes (any case), `no` for
 * anything else (Enter included), `interrupted` for Ctrl-C (or end of input) at the question: the
 * caller then writes nothing and exits 130.
 */
export async function confirm(question: string): Promise<'yes' | 'no' | 'interrupted'> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await new Promise((resolve) => {
      // readline turns Ctrl-C in raw mode into its own SIGINT event, not the process's signal.
      rl.once('SIGINT', () => resolve('interrupted'));
      rl.once('close', () => resolve('interrupted'));
      rl.question(question, (answer) => resolve(/^y(es)?$/i.test(answer.trim()) ? 'yes' : 'no'));
    });
  } finally {
    rl.close();
  }
}

/**
 * What a command says after the question: `yes` goes on (undefined); otherwise the line for the
 * person (stderr) and the exit code: 0 for no, 130 for Ctrl-C.
 */
export function declined(answer: 'yes' | 'no' | 'interrupted'): { readonly message: string; readonly exit: number } | undefined {
  if (answer === 'yes') return undefined;
  return answer === 'no'
    ? { message: 'cancelled: nothing was written', exit: 0 }
    : { message: 'interrupted: nothing was written', exit: 130 };
}
