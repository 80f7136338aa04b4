/**
 * One ajv validator per JSON Schema in `schemas/`, compiled once per process.
 *
 * Compiling `fix.schema.json` is a quarter of the CPU a short CLI run spends, so `npm run build`
 * also writes each schema's validator as standalone code beside the build
 * (`dist/language/<name>.schema.validator.cjs`, by `scripts/build-validators.mjs`; ajv's way to skip
 * schema compilation at start-up: https://ajv.js.org/standalone.html). The CLI loads that file when
 * its recorded SHA-256 matches the schema file it would validate against; otherwise (the tests,
 * which import `src/`, or a schema edited since the build) it compiles the schema with the same
 * options. Both paths give the same errors.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);

/** The schemas in `schemas/` that datafix validates against: `<name>.schema.json`. */
export type SchemaName = 'fix' | 'fix-test';
export const SCHEMA_NAMES: readonly SchemaName[] = ['fix', 'fix-test'];

/**
 * ajv options for every schema. strict mode stays on: a schema typo must fail loudly, not validate
 * nothing. `verbose` puts the schema and data on each error, which the diagnostics read.
 */
export const AJV_OPTIONS = { strict: true, allErrors: true, verbose: true } as const;

const schemas = new Map<SchemaName, { text: string; json: Record<string, unknown> }>();
const validators = new Map<SchemaName, ValidateFunction>();

/** The text and parsed JSON of `schemas/<name>.schema.json`, read once. */
export function schemaSource(name: SchemaName): { text: string; json: Record<string, unknown> } {
  let s = schemas.get(name);
  if (!s) {
    const text = readFileSync(new URL(`../../schemas/${name}.schema.json`, import.meta.url), 'utf8');
    s = { text, json: JSON.parse(text) as Record<string, unknown> };
    schemas.set(name, s);
  }
  return s;
}

/** SHA-256 (hex) of a schema file's text: what ties a standalone validator to its schema. */
export function schemaDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The validator for `schemas/<name>.schema.json`. Throws only if the schema itself is invalid. */
export function schemaValidator(name: SchemaName): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    const { text, json } = schemaSource(name);
    v = standalone(name, schemaDigest(text)) ?? compile(json);
    validators.set(name, v);
  }
  return v;
}

/** Compiles a schema at run time; ajv itself is loaded only then (it is CommonJS). */
function compile(schema: Record<string, unknown>): ValidateFunction {
  const { Ajv2020 } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  return new Ajv2020(AJV_OPTIONS).compile(schema);
}

function standalone(name: SchemaName, digest: string): ValidateFunction | undefined {
  const file = `./${name}.schema.validator.cjs`;
  let loaded: ValidateFunction & { schemaSha256?: string };
  try {
    loaded = require(file);
  } catch (err) {
    // Absent beside src/ (tests) or in a build made without the script: compile instead.
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
  return loaded.schemaSha256 === digest ? loaded : undefined;
}
