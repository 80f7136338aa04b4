/**
 * Points errors found against the live target back into the spec: a diagnostic that names a spec
 * value (`path`) but no file gets the spec's `file:line:col`, like any other spec error.
 */
import { DatafixError, type Diagnostic } from '../errors.js';
import { type LoadedSpec, loadSpecFile } from './load.js';

/**
 * Returns `err` with `file`, `line` and `col` filled in on every diagnostic that has a `path`
 * (a JSON pointer such as `/update/key`) and no file. Anything else, and any spec that can no
 * longer be read, is returned unchanged: locating is a courtesy, never a new failure.
 */
export function locateInSpec(err: unknown, specFile: string): unknown {
  if (!(err instanceof DatafixError) || !err.diagnostics.some((d) => d.path !== undefined && d.file === undefined)) return err;
  let spec: LoadedSpec;
  try {
    spec = loadSpecFile(specFile);
  } catch {
    return err;
  }
  const diagnostics = err.diagnostics.map((d): Diagnostic => {
    if (d.path === undefined || d.file !== undefined) return d;
    const { line, col } = spec.locate(d.path.split('/').slice(1));
    return { ...d, file: specFile, line, col };
  });
  return new DatafixError(err.category, err.code, err.message, diagnostics);
}
