/** The one place that turns outcomes into exit codes and prints errors. */
import { redactText } from '../adapters/redact.js';
import { DatafixError, formatDiagnostic } from '../errors.js';

export const EXIT = {
  ok: 0,
  /** The run finished but some records failed. */
  recordsFailed: 1,
  /** Invalid spec, configuration, connection or usage. */
  invalid: 2,
  /** A bug in datafix: the stack is printed so it can be reported. */
  internal: 3,
  /** Interrupted (Ctrl-C) after finishing the records in flight. */
  interrupted: 130,
} as const;

/**
 * Prints an error for a person: user errors (DatafixError) as their message and diagnostics with
 * no stack; anything else as an internal error with its stack. Credentials in URLs a message
 * quotes are stripped first, whatever produced the message.
 */
export function reportError(err: unknown, stderr: NodeJS.WritableStream): number {
  if (err instanceof DatafixError) {
    if (err.diagnostics.length > 0) {
      for (const d of err.diagnostics) stderr.write(`${redactText(formatDiagnostic(d))}\n`);
    } else {
      stderr.write(`error ${err.code}: ${redactText(err.message)}\n`);
    }
    return EXIT.invalid;
  }
  const e = err as Error;
  stderr.write(`internal error (a bug in datafix; please report it with this output):\n${redactText(e?.stack ?? String(err))}\n`);
  return EXIT.internal;
}
