/**
 * The CLI's first stop-signal handler, installed by the entry script before anything else is
 * loaded: Ctrl-C (SIGTERM, SIGHUP) while the CLI starts, or during a command that writes nothing
 * and has no handler of its own (validate, explain, plan, runs …), prints that nothing was
 * written and exits 130 instead of the process dying silently. A command that handles the stop
 * signals itself (run, apply, undo, test, demo) adds its own listener; this one then steps aside.
 * Kept free of imports so that it is loaded in a moment.
 */

/** The signals that stop a command as Ctrl-C does: SIGTERM (a scheduler, `docker stop`) and SIGHUP (the terminal closed) too. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * A stop signal this soon (ms) after the first is the same stop, not a second one: GNU `timeout`
 * signals the command and then its whole process group, so the command gets the signal twice
 * within microseconds; a person's second Ctrl-C comes far later.
 */
export const SAME_STOP_MS = 100;

/**
 * Tells a second stop from the first delivered again: `echo()` is true within `SAME_STOP_MS`
 * (performance.now() time) of the last `first()`.
 */
export function stopEcho(): { first(): void; echo(): boolean } {
  let at = Number.NEGATIVE_INFINITY;
  return {
    first: () => {
      at = performance.now();
    },
    echo: () => performance.now() - at < SAME_STOP_MS,
  };
}

/**
 * Installs the handler for the CLI invoked with `argv` (`--json` before `--` makes it print one
 * JSON object on stdout too, as every ending of such a command does).
 */
export function installEarlyStop(argv: readonly string[]): void {
  const json = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : undefined).includes('--json');
  const stop = (signal: NodeJS.Signals) => {
    // Another listener is a command's own: it decides what stopping means there.
    if (process.listenerCount(signal) > 1) return;
    process.stderr.write('\ninterrupted: nothing was written.\n');
    if (json) process.stdout.write(`${JSON.stringify({ interrupted: { message: 'interrupted: nothing was written' } })}\n`);
    process.exit(130);
  };
  for (const s of STOP_SIGNALS) process.on(s, stop);
}
