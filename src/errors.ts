/**
 * Errors are data: a stable code, where it happened and what to do. The CLI turns the category
 * into the exit code in one place (src/cli/exit.ts) and prints user errors without a stack.
 */

export interface Diagnostic {
  /** Stable code, never reassigned (e.g. `DF101`). */
  readonly code: string;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  /** JSON pointer into the spec (`/source/table`), when the diagnostic is about a spec value. */
  readonly path?: string;
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
}

/** usage: bad CLI arguments; spec: invalid spec; config: environment or target mismatch; connection: target unreachable. */
export type ErrorCategory = 'usage' | 'spec' | 'config' | 'connection';

export class DatafixError extends Error {
  readonly category: ErrorCategory;
  readonly code: string;
  readonly diagnostics: readonly Diagnostic[];

  constructor(category: ErrorCategory, code: string, message: string, diagnostics: readonly Diagnostic[] = []) {
    super(message);
    this.name = 'DatafixError';
    this.category = category;
    this.code = code;
    this.diagnostics = diagnostics;
  }
}

/** `file:line:col code message`, the one format every diagnostic prints in. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file ? `${d.file}:${d.line ?? 1}:${d.col ?? 1}` : '';
  const sev = d.severity === 'warning' ? ' warning' : '';
  return `${where}${where ? ' ' : ''}${d.code}${sev} ${d.message}`;
}

/**
 * A spec that is valid on its own but does not fit the live target (a key that is not unique, a
 * table or column that does not exist). `specPath` names the spec value at fault (e.g.
 * `['update', 'key']`); whoever knows the spec file turns it into `file:line:col`
 * (src/language/locate.ts).
 */
export function targetMismatch(code: string, message: string, specPath: readonly (string | number)[]): DatafixError {
  return new DatafixError('config', code, message, [{ code, severity: 'error', message, path: `/${specPath.join('/')}` }]);
}
