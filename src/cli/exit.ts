/** The one place that turns outcomes into exit codes and prints errors. */
import { redactText } from '../adapters/redact.js';
import { DatafixError, type Diagnostic, formatDiagnostic } from '../errors.js';
import { STOP_SIGNALS } from './early-stop.js';

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

/** Where an error is located, as `--json` reports it: each of file, line, col, or null. */
interface JsonError {
  readonly code: string;
  readonly message: string;
  readonly file: string | null;
  readonly line: number | null;
  readonly col: number | null;
}

function jsonDiagnostic(d: Diagnostic): JsonError {
  return { code: d.code, message: redactText(d.message), file: d.file ?? null, line: d.line ?? null, col: d.col ?? null };
}

/**
 * The one JSON object `--json` prints on stdout when a command fails:
 * `{"error": {"code", "message", "file", "line", "col"}}`, file/line/col null where the error is
 * not about a place in a file. An invalid spec reports its first problem there and every problem
 * (same fields) in `error.diagnostics`. A bug in datafix has code `internal`.
 */
export function errorJson(err: unknown): string {
  let error: JsonError & { diagnostics?: JsonError[] };
  if (err instanceof DatafixError) {
    const [first, ...others] = err.diagnostics;
    error = first
      ? { ...jsonDiagnostic(first), ...(others.length > 0 ? { diagnostics: err.diagnostics.map(jsonDiagnostic) } : {}) }
      : { code: err.code, message: redactText(err.message), file: null, line: null, col: null };
  } else {
    const message = err instanceof Error ? err.message : String(err);
    error = { code: 'internal', message: redactText(message), file: null, line: null, col: null };
  }
  return `${JSON.stringify({ error })}\n`;
}

/**
 * Prints an error for a person: user errors (DatafixError) as their message and diagnostics with
 * no stack; anything else as an internal error with its stack. Credentials in URLs a message
 * quotes are stripped first, whatever produced the message. Given `json` (stdout under `--json`),
 * the error is also written there as one JSON object (`errorJson`).
 */
export function reportError(err: unknown, stderr: NodeJS.WritableStream, json?: NodeJS.WritableStream): number {
  json?.write(errorJson(err));
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

/**
 * The one JSON object `--json` prints when the person answered no at the confirmation:
 * `{"cancelled": {"message", "preview"}}`, preview being the dry pass's summary they declined.
 */
export function cancelledJson(message: string, preview: unknown): string {
  return `${JSON.stringify({ cancelled: { message, preview } })}\n`;
}

export { STOP_SIGNALS, stopEcho } from './early-stop.js';

/**
 * While `body` runs, Ctrl-C, SIGTERM and SIGHUP end the command after removing the temporary
 * directories it made (a fix test's databases, the demo's sample data), with exit 130: these
 * commands write nothing of the user's, so there is nothing to finish first.
 */
export async function removingTempsOnStop<T>(stderr: NodeJS.WritableStream, body: () => Promise<T>): Promise<T> {
  const { removeTempDirs } = await import('../safety/temp-dirs.js');
  const stop = () => {
    removeTempDirs();
    stderr.write('\ninterrupted: temporary files removed.\n');
    process.exit(EXIT.interrupted);
  };
  for (const s of STOP_SIGNALS) process.on(s, stop);
  try {
    return await body();
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, stop);
  }
}
