/**
 * What every section compiler shares: the diagnostics collected so far (each with the spec's
 * `file:line:col`), the names a reference may start with, and the parsing of references and
 * templates with their errors reported at the spec position they came from.
 */
import type { Diagnostic } from '../../errors.js';
import type { Ref, Template } from '../../plan/types.js';
import type { LoadedSpec, PathSegment } from '../load.js';
import { parseRef, parseTemplate, RefSyntaxError } from '../refs.js';
import { compileTemplateExprs } from './expressions.js';

/** The run timestamp's name in references (`{{ now }}`). */
export const NOW = 'now';
/** A name SQL may use unquoted; column and table names from a spec must match it. */
export const SQL_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** What a reference root names. */
export type RootKind = 'source' | 'lookup' | 'extract' | 'now';

/** Says why a root may not be used at this place, or undefined when it may. */
export type RootRule = (root: string) => string | undefined;

/**
 * Diagnostics and names for one compilation. Errors are collected, never thrown, so `validate`
 * reports every problem of a spec at once.
 */
export class CompileScope {
  readonly diags: Diagnostic[] = [];
  /** Every name a reference may start with, in declaration order. */
  readonly roots = new Map<string, RootKind>([[NOW, 'now']]);

  constructor(
    private readonly spec: LoadedSpec,
    readonly backend: 'sqlite' | 'dynamodb',
  ) {}

  /** Records an error at `path` (a JSON pointer's segments); `key` points at the key, not its value. */
  error(code: string, path: readonly PathSegment[], message: string, key = false): void {
    const { line, col } = this.spec.locate(path, { key });
    const pointer = `/${path.map(String).join('/')}`;
    this.diags.push({ code, severity: 'error', message: `${pointer}: ${message}`, path: pointer, file: this.spec.file, line, col });
  }

  /**
   * Records an error inside the string value at `path`, `offset` characters into it: pointed at
   * that character when the value is a plain or quoted scalar on one line that holds the text as
   * written (no escapes), otherwise at the scalar's start.
   */
  errorAt(code: string, path: readonly PathSegment[], message: string, offset: number): void {
    const { line, col } = this.spec.locate(path);
    let value: unknown = this.spec.data;
    for (const seg of path) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[seg] : undefined;
    const lineText = this.spec.text.split('\n')[line - 1] ?? '';
    const rest = lineText.slice(col - 1);
    let at = col;
    if (typeof value === 'string' && !value.includes('\n')) {
      if (rest.startsWith(value)) at = col + offset;
      else if ((rest[0] === '"' || rest[0] === "'") && rest.slice(1).startsWith(value)) at = col + 1 + offset;
    }
    const pointer = `/${path.map(String).join('/')}`;
    this.diags.push({ code, severity: 'error', message: `${pointer}: ${message}`, path: pointer, file: this.spec.file, line, col: at });
  }

  /** Parses a reference (`row.a.b`); a syntax error is DF208 at `path` and gives undefined. */
  ref(text: unknown, path: PathSegment[]): Ref | undefined {
    try {
      return parseRef(String(text));
    } catch (err) {
      this.error('DF208', path, (err as Error).message);
      return undefined;
    }
  }

  /**
   * Parses a template (`"MEDIA#{{ job.mediaId }}"` or a literal); a bad placeholder is DF207, a
   * bad expression placeholder one of DF230–DF236 (see ./expressions.ts).
   */
  template(value: unknown, path: PathSegment[]): Template | undefined {
    try {
      return compileTemplateExprs(parseTemplate(value), path, this);
    } catch (err) {
      if (err instanceof RefSyntaxError) {
        this.error('DF207', path, err.message);
        return undefined;
      }
      throw err;
    }
  }

  /** Checks a context reference: its root must exist (DF201) and be allowed here (DF202). */
  checkRoot(r: Ref, path: PathSegment[], allowed: RootRule = () => undefined): void {
    if (!this.roots.has(r.root)) {
      const known = [...this.roots.keys()].join(', ');
      this.error('DF201', path, `\`${r.text}\` names \`${r.root}\`, which is not defined; known names: ${known}`);
      return;
    }
    if (r.root === NOW && r.path.length > 0) this.error('DF201', path, '`now` is a timestamp and has no fields');
    const why = allowed(r.root);
    if (why) this.error('DF202', path, why);
  }
}
