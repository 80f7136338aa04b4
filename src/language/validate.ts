/**
 * Schema validation (one validator per process, from `schema-validator.ts`) and the translation of
 * ajv's errors into diagnostics a person can act on: a stable code, the JSON path, file:line:col
 * and a plain message.
 */
import type { ErrorObject } from 'ajv';
import type { Diagnostic } from '../errors.js';
import type { LoadedSpec, PathSegment } from './load.js';
import { schemaSource, schemaValidator } from './schema-validator.js';

/** The parsed `schemas/fix.schema.json`. */
export function fixSchema(): Record<string, unknown> {
  return schemaSource('fix').json;
}

export function validateSpec(spec: LoadedSpec): Diagnostic[] {
  const validate = schemaValidator('fix');
  if (validate(spec.data)) return [];
  return toDiagnostics(validate.errors ?? [], spec);
}

function pointerToPath(pointer: string): PathSegment[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const A_TYPE: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'null',
};

function describeTypes(types: unknown): string {
  const list = Array.isArray(types) ? types : [types];
  return list.map((t) => A_TYPE[String(t)] ?? String(t)).join(' or ');
}

const PATTERN_HINTS: [RegExp, string][] = [
  [/^\^\[A-Za-z_\]\[A-Za-z0-9_\]\*\$$/, 'a name of letters, digits and _ that does not start with a digit'],
  [/^\^\[a-z0-9\]/, 'lower-case letters, digits, ".", "_" and "-", starting with a letter or digit'],
  [/^\^\[a-z\]\[a-z0-9_\]\*\$$/, 'snake_case: lower-case letters, digits and _, starting with a letter'],
  [/^\^\\\$\\\{/, 'an environment reference like ${NAME} or ${NAME:-default}'],
];

function patternHint(pattern: string): string {
  for (const [re, hint] of PATTERN_HINTS) if (re.test(pattern)) return hint;
  return `text matching ${pattern}`;
}

function anyOfMessage(schema: unknown): string {
  const branches = Array.isArray(schema) ? (schema as Record<string, unknown>[]) : [];
  const parts = branches.map((b) => {
    if (typeof b.description === 'string' && b.description.length < 60) return b.description;
    if (b.type === 'string' && typeof b.pattern === 'string') return patternHint(b.pattern);
    if (b.$ref) return `a ${String(b.$ref).split('/').pop()}`;
    return describeTypes(b.type);
  });
  return `expected ${parts.join(', or ')}`;
}

function message(e: ErrorObject): { path: PathSegment[]; key: boolean; text: string; code: string } {
  const path = pointerToPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const parentProps = Object.keys(((e.parentSchema as Record<string, unknown>)?.properties ?? {}) as object);
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const allowed = parentProps.length ? `; expected one of: ${parentProps.join(', ')}` : '';
      return { path: [...path, extra], key: true, code: 'DF101', text: `unknown key \`${extra}\`${allowed}` };
    }
    case 'required':
      return { path, key: false, code: 'DF103', text: `missing required key \`${String(params.missingProperty)}\`` };
    case 'type':
      return { path, key: false, code: 'DF102', text: `expected ${describeTypes(params.type)}` };
    case 'enum':
      return { path, key: false, code: 'DF104', text: `expected one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}` };
    case 'const':
      return { path, key: false, code: 'DF104', text: `expected ${JSON.stringify(params.allowedValue)}` };
    case 'pattern':
      return { path, key: false, code: 'DF104', text: `expected ${patternHint(String(params.pattern))}` };
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum':
    case 'exclusiveMaximum':
      return { path, key: false, code: 'DF105', text: `must be ${String(params.comparison)} ${String(params.limit)}` };
    case 'minLength':
      return { path, key: false, code: 'DF105', text: 'must not be empty' };
    case 'maxLength':
      return { path, key: false, code: 'DF105', text: `must be at most ${String(params.limit)} characters` };
    case 'minItems':
      return { path, key: false, code: 'DF105', text: `expected at least ${String(params.limit)} item(s)` };
    case 'maxItems':
      return { path, key: false, code: 'DF105', text: `expected at most ${String(params.limit)} item(s)` };
    case 'minProperties':
    case 'maxProperties': {
      const one = parentProps.length ? `exactly one of: ${parentProps.join(', ')}` : 'a different number of keys';
      const count = e.data && typeof e.data === 'object' ? Object.keys(e.data).length : 0;
      return { path, key: false, code: 'DF106', text: `expected ${one} (found ${count})` };
    }
    case 'propertyNames': {
      const name = String(params.propertyName);
      return { path: [...path, name], key: true, code: 'DF104', text: `key \`${name}\` is not allowed here` };
    }
    case 'anyOf':
      return { path, key: false, code: 'DF102', text: anyOfMessage(e.schema) };
    default:
      return { path, key: false, code: 'DF107', text: e.message ?? 'invalid value' };
  }
}

export function toDiagnostics(errors: readonly ErrorObject[], spec: LoadedSpec): Diagnostic[] {
  // An anyOf failure already says what was expected; the errors of its branches at the same
  // place only repeat it in ajv's words.
  const anyOfAt = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  // propertyNames reports the bad name itself; its inner pattern error has no useful location.
  const namesAt = new Set(errors.filter((e) => e.keyword === 'propertyNames').map((e) => e.instancePath));
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfAt.has(e.instancePath) && e.schemaPath.includes('/anyOf/')) continue;
    if (e.keyword !== 'propertyNames' && e.schemaPath.includes('/propertyNames/')) continue;
    if (e.keyword === 'if') continue;
    const m = message(e);
    if (e.keyword !== 'propertyNames' && namesAt.has(e.instancePath) && e.propertyName !== undefined) continue;
    const pointer = `/${m.path.map(String).join('/')}`;
    const dedupe = `${pointer}|${m.text}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    const { line, col } = spec.locate(m.path, { key: m.key });
    out.push({
      code: m.code,
      severity: 'error',
      message: `${pointer === '/' ? '' : `${pointer}: `}${m.text}`,
      path: pointer,
      file: spec.file,
      line,
      col,
    });
  }
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
}
