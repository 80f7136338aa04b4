/** Validation of fix test files, with the same diagnostics (code, path, file:line:col) as specs. */
import type { Diagnostic } from '../errors.js';
import type { LoadedSpec } from '../spec/load.js';
import { schemaValidator } from '../spec/schema-validator.js';
import { toDiagnostics } from '../spec/validate.js';

export function validateTestFile(file: LoadedSpec): Diagnostic[] {
  const validate = schemaValidator('fix-test');
  if (validate(file.data)) return [];
  return toDiagnostics(validate.errors ?? [], file).map((d) => ({ ...d, code: d.code.replace(/^DF1/, 'DF5') }));
}
