/** Validation of fix test files, with the same diagnostics (code, path, file:line:col) as specs. */
import { readFileSync } from 'node:fs';
import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Diagnostic } from '../errors.js';
import type { LoadedSpec } from '../spec/load.js';
import { toDiagnostics } from '../spec/validate.js';

let cached: ValidateFunction | undefined;

export function validateTestFile(file: LoadedSpec): Diagnostic[] {
  if (!cached) {
    const schema = JSON.parse(readFileSync(new URL('../../schemas/fix-test.schema.json', import.meta.url), 'utf8'));
    cached = new Ajv2020({ strict: true, allErrors: true, verbose: true }).compile(schema);
  }
  if (cached(file.data)) return [];
  return toDiagnostics(cached.errors ?? [], file).map((d) => ({ ...d, code: d.code.replace(/^DF1/, 'DF5') }));
}
