/**
 * The standalone validators `npm run build` writes into dist/ must judge specs and fix test files
 * exactly as the schema compiled at run time does: same verdict, same errors (and so the same
 * diagnostics), and only for the schema they were built from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AJV_OPTIONS, SCHEMA_NAMES, type SchemaName, schemaDigest, schemaSource } from '../../src/language/schema-validator.js';
import { REPO_ROOT } from '../helpers/cli.js';

const built = (name: SchemaName) => `${REPO_ROOT}dist/language/${name}.schema.validator.cjs`;
const fixture = (file: string) => parse(readFileSync(`${REPO_ROOT}${file}`, 'utf8')) as Record<string, unknown>;

/** Valid documents from the shipped fixes, and broken copies that hit different keywords. */
function documents(name: SchemaName): unknown[] {
  const base = fixture(name === 'fix' ? 'fixes/sync-video-urls.yaml' : 'fixes/sync-video-urls.test.yaml');
  const other = fixture(name === 'fix' ? 'fixes/i2v-thumbnails.yaml' : 'fixes/i2v-thumbnails.test.yaml');
  return [
    base,
    other,
    { ...base, bogusKey: 1 },
    { ...base, name: 42 },
    Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'name')),
    { ...other, source: 'a string' },
    { ...other, update: { ...(other.update as object), set: [] } },
    [],
    null,
  ];
}

describe('standalone schema validators', () => {
  for (const name of SCHEMA_NAMES) {
    it(`${name}.schema.json: the built validator gives the run-time compiled schema's verdicts and errors`, () => {
      expect(existsSync(built(name)), 'run `npm run build` first').toBe(true);
      const standalone = createRequire(import.meta.url)(built(name));
      const { text, json } = schemaSource(name);
      expect(standalone.schemaSha256).toBe(schemaDigest(text));
      const compiled = new Ajv2020(AJV_OPTIONS).compile(json);
      let invalid = 0;
      for (const doc of documents(name)) {
        const verdict = compiled(doc);
        expect(standalone(doc), JSON.stringify(doc)).toBe(verdict);
        expect(standalone.errors ?? null).toEqual(compiled.errors ?? null);
        if (!verdict) invalid++;
      }
      expect(invalid).toBeGreaterThanOrEqual(5);
    });
  }
});
