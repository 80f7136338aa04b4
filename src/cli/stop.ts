/**
 * Ctrl-C, SIGTERM and SIGHUP for the commands that write a target from a list of records
 * (`apply`, `undo`): the first one stops at the next safe point (before anything is written, or
 * after the writes in flight, with their outcomes journaled and the lock released); a second one
 * stops at once, leaving what a crash leaves.
 */
import { EXIT, STOP_SIGNALS, stopEcho } from './exit.js';

export interface CommandStop {
  /** Aborted by the first stop signal (or Ctrl-C typed at a question, through `interrupt`). */
  readonly signal: AbortSignal;
  /**
   * From now on the command writes: a first signal says it finishes the writes in flight, and a
   * second one prints `atOnce` (what is left and how to go on) before exiting.
   */
  writing(atOnce: string): void;
  /** The stop handler itself, for Ctrl-C typed at a question (see `confirm`). */
  interrupt(): void;
  /** Removes the handlers: the command is over. */
  dispose(): void;
}

/** Installs the stop handlers of a writing command; `dispose` them when it ends. */
export function stopOnSignals(stderr: NodeJS.WritableStream): CommandStop {
  const abort = new AbortController();
  let atOnce: string | undefined;
  /** The first stop signal delivered again (GNU timeout signals the process group too) is no second stop. */
  const stops = stopEcho();
  const interrupt = () => {
    if (abort.signal.aborted && stops.echo()) return;
    if (abort.signal.aborted) {
      stderr.write(`\nstopped at once: ${atOnce ?? 'nothing was written.'}\n`);
      process.exit(EXIT.interrupted);
    }
    stops.first();
    abort.abort();
    stderr.write(
      atOnce === undefined
        ? '\ninterrupt: stopping before anything is written (Ctrl-C again to stop at once)\n'
        : '\ninterrupt: finishing the writes in flight and journaling them (Ctrl-C again to stop at once)\n',
    );
  };
  for (const s of STOP_SIGNALS) process.on(s, interrupt);
  return {
    signal: abort.signal,
    writing: (text) => {
      atOnce = text;
    },
    interrupt,
    dispose: () => {
      for (const s of STOP_SIGNALS) process.off(s, interrupt);
    },
  };
}
