// Writes each schema's ajv validator as standalone code beside the build, so that a CLI process
// does not compile the schema at start-up (src/language/schema-validator.ts explains the fallback).
// Runs after `tsc -b tsconfig.build.json`, with the options and file names the build itself uses.
import { writeFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { AJV_OPTIONS, SCHEMA_NAMES, schemaDigest, schemaSource } from '../dist/language/schema-validator.js';

for (const name of SCHEMA_NAMES) {
  const { text, json } = schemaSource(name);
  const ajv = new Ajv2020({ ...AJV_OPTIONS, code: { source: true } });
  const code = standaloneCode.default(ajv, ajv.compile(json));
  const out = new URL(`../dist/language/${name}.schema.validator.cjs`, import.meta.url);
  writeFileSync(out, `${code}\nmodule.exports.schemaSha256 = ${JSON.stringify(schemaDigest(text))};\n`);
}
