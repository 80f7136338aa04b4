import { readFileSync } from 'node:fs';
import Ajv2020, { type ErrorObject } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const schema = JSON.parse(readFileSync(new URL('../schemas/fix.schema.json', import.meta.url), 'utf8')) as JsonObject;
const docs = readFileSync(new URL('../docs/spec.md', import.meta.url), 'utf8');

// Under NodeNext the default import of this CommonJS module is typed as the module itself;
// at runtime the module is the class and also carries it as `.default`, so this works for both.
const Ajv = Ajv2020.default;

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const escapePointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

interface PropertyEntry {
  name: string;
  pointer: string;
  schema: Json;
}

/** Every entry of every `properties` keyword in the schema, at any depth (including `$defs`). */
function collectProperties(node: Json, pointer = ''): PropertyEntry[] {
  const found: PropertyEntry[] = [];
  if (Array.isArray(node)) {
    node.forEach((item, i) => {
      found.push(...collectProperties(item, `${pointer}/${i}`));
    });
  } else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      const here = `${pointer}/${escapePointer(key)}`;
      if (key === 'properties' && isObject(value)) {
        for (const [name, sub] of Object.entries(value)) {
          const subPointer = `${here}/${escapePointer(name)}`;
          found.push({ name, pointer: subPointer, schema: sub });
          found.push(...collectProperties(sub, subPointer));
        }
      } else {
        found.push(...collectProperties(value, here));
      }
    }
  }
  return found;
}

const properties = collectProperties(schema);

/** `${inner}`, spelled so that it is not mistaken for a misplaced template literal. */
const env = (inner: string) => `\${${inner}}`;

/** A minimal valid SQLite fix; tests derive variants from it by replacing top-level keys. */
function baseSpec(): JsonObject {
  return {
    name: 'demo-fix',
    target: { sqlite: { path: './demo.db' } },
    source: { as: 'row', table: 'items' },
    update: { key: { id: '{{ row.id }}' }, set: { label: '{{ row.name }}' } },
  };
}

describe('schemas/fix.schema.json', () => {
  let validate: ReturnType<InstanceType<typeof Ajv>['compile']>;

  beforeAll(() => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    validate = ajv.compile(schema);
  });

  function errorsFor(doc: unknown): ErrorObject[] {
    return validate(doc) ? [] : (validate.errors ?? []);
  }

  const keywordsAt = (errors: ErrorObject[]) => errors.map((e) => [e.instancePath, e.keyword]);

  it('is draft 2020-12 with an $id, a title and a description', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe('https://datafix.dev/schemas/fix.schema.json');
    expect(schema.title).toEqual(expect.any(String));
    expect(schema.description).toEqual(expect.any(String));
  });

  it('compiles under ajv 2020 strict mode', () => {
    expect(typeof validate).toBe('function');
  });

  it('gives every property a description an editor can show', () => {
    expect(properties.length).toBeGreaterThan(40);
    const lacking = properties
      .filter((p) => {
        const d = isObject(p.schema) ? p.schema.description : undefined;
        return typeof d !== 'string' || d.trim() === '';
      })
      .map((p) => p.pointer);
    expect(lacking, `properties without a description: ${lacking.join(', ')}`).toEqual([]);
  });

  it('sets additionalProperties: false on every object with fixed properties', () => {
    const open: string[] = [];
    const walk = (node: Json, pointer: string) => {
      if (Array.isArray(node)) {
        node.forEach((n, i) => {
          walk(n, `${pointer}/${i}`);
        });
      }
      if (!isObject(node)) return;
      if (node.type === 'object' && isObject(node.properties) && node.additionalProperties !== false) {
        open.push(pointer || '/');
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${pointer}/${escapePointer(k)}`);
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('documents every property name in docs/spec.md', () => {
    const names = [...new Set(properties.map((p) => p.name))].sort();
    const missing = names.filter((name) => !docs.includes(`\`${name}\``));
    expect(missing, `not in docs/spec.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('accepts every complete example in docs/spec.md', () => {
    const blocks = [...docs.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').filter((text) => /^name: /m.test(text));
    expect(blocks.length).toBe(2);
    for (const text of blocks) {
      const doc = parse(text, { schema: 'core', merge: false, uniqueKeys: true });
      expect(errorsFor(doc), text.split('\n')[1]).toEqual([]);
    }
  });

  describe('valid documents', () => {
    it.each<[string, JsonObject]>([
      ['the minimal spec', {}],
      [
        'a DynamoDB query with every option',
        {
          target: { dynamodb: { table: env('DYNAMODB_TABLE'), region: 'eu-west-1', endpoint: '' } },
          source: {
            as: 'video',
            query: {
              index: 'GSI8',
              key: { GSI8PK: 'MEDIA', GSI8SK: { between: ['video#a', 'video#z'] } },
              newestFirst: true,
              pageSize: 200,
              filter: { equals: { type: 'video', meta: { a: [1, null] } } },
              consistentRead: false,
            },
          },
          lookups: { job: { get: { PK: 'JOB#{{ video.id }}', SK: 'METADATA' } } },
          update: {
            key: { PK: '{{ video.PK }}', SK: '{{ video.SK }}' },
            set: { thumbnailUrls: '{{ job.thumbs }}', tags: ['a', '{{ job.tag }}'] },
            touch: { updatedAt: '{{ now }}' },
            overwrite: ['thumbnailUrls'],
          },
        },
      ],
      ['a scan with segments', { source: { as: 'item', scan: { segments: 4, filter: { exists: 'thumbnailUrl' } } } }],
      [
        'nested conditions, bracketed references and extracts',
        {
          extract: {
            one: { from: 'row.raw', parse: 'json', path: '$.a[0].b' },
            two: { from: 'row["raw.v2"]', first: ['$.x', '$..y'] },
          },
          skip: [
            {
              reason: 'not_ready',
              when: {
                any: [{ all: [{ missing: ['one', 'two'] }, { not: { isNull: 'row.a' } }] }, { notNull: 'row["a.b"].c' }],
              },
            },
          ],
        },
      ],
      [
        'run settings as numbers and environment references',
        {
          target: { sqlite: { path: '~/x.db', busyTimeoutMs: env('BUSY:-0') } },
          run: {
            concurrency: env('I2V_BACKFILL_CONCURRENCY:-10'),
            batchSize: 500,
            pageSize: env('PAGE'),
            limit: 1,
          },
        },
      ],
    ])('accepts %s', (_label, patch) => {
      expect(errorsFor({ ...baseSpec(), ...patch })).toEqual([]);
    });
  });

  // These rules belong to the compiler (src/language/compile.ts, src/language/refs.ts,
  // src/language/jsonpath.ts), which names the problem in plain words. Schema errors stop compilation,
  // so refusing these here as well would only trade the compiler's message for a vaguer one.
  describe('left to the compiler', () => {
    it.each<[string, JsonObject]>([
      ['two readers in source', { source: { as: 'row', table: 'items', scan: {} } }],
      ['no reader in source', { source: { as: 'row' } }],
      ['both path and first in an extract', { extract: { x: { from: 'row.raw', path: '$.a', first: ['$.b'] } } }],
      ['a JSONPath filter expression', { extract: { x: { from: 'row.raw', path: '$.a[?(@.b)]' } } }],
      ['a __proto__ reference segment', { skip: [{ reason: 'r', when: { exists: 'row.__proto__' } }] }],
      ['a reserved skip reason', { skip: [{ reason: 'no_change', when: { exists: 'row.a' } }] }],
      ['a source named now', { source: { as: 'now', table: 'items' } }],
    ])('the schema accepts %s', (_label, patch) => {
      expect(errorsFor({ ...baseSpec(), ...patch })).toEqual([]);
    });
  });

  describe('invalid documents', () => {
    const update = (set: Json): JsonObject => ({ update: { key: { id: 1 }, set } });
    const when = (condition: Json): JsonObject => ({ skip: [{ reason: 'r', when: condition }] });

    it('rejects a spec without a name', () => {
      const { name: _name, ...spec } = baseSpec();
      expect(keywordsAt(errorsFor(spec))).toContainEqual(['', 'required']);
    });

    it.each<[string, JsonObject, string, string]>([
      ['an unknown root key', { bogusKey: 1 }, '', 'additionalProperties'],
      ['a name with capitals', { name: 'Bad' }, '/name', 'pattern'],
      ['both backends in target', { target: { sqlite: { path: 'a.db' }, dynamodb: { table: 't' } } }, '/target', 'maxProperties'],
      ['an empty target', { target: {} }, '/target', 'minProperties'],
      ['a condition with two operators', when({ exists: 'row.a', missing: 'row.b' }), '/skip/0/when', 'maxProperties'],
      ['an unknown condition operator', when({ present: 'row.a' }), '/skip/0/when', 'additionalProperties'],
      ['an empty all', when({ all: [] }), '/skip/0/when/all', 'minItems'],
      ['a __proto__ key in set', update(JSON.parse('{"__proto__": "x"}')), '/update/set', 'propertyNames'],
      [
        'a prototype key deep inside a template',
        update({ a: { b: [JSON.parse('{"prototype": 1}')] } }),
        '/update/set/a/b/0',
        'propertyNames',
      ],
      ['an empty set', update({}), '/update/set', 'minProperties'],
      ['a lookup named now', { lookups: { now: { get: { id: 1 }, table: 'jobs' } } }, '/lookups', 'propertyNames'],
      ['a table name that is not an identifier', { source: { as: 'row', table: 'items; DROP TABLE x' } }, '/source/table', 'pattern'],
      [
        'a sort-key condition with two operators',
        { source: { as: 'v', query: { key: { PK: 'a', SK: { gt: 1, lt: 5 } } } } },
        '/source/query/key/SK',
        'maxProperties',
      ],
      ['a parse other than json', { extract: { x: { from: 'row.raw', parse: 'yaml', path: '$.a' } } }, '/extract/x/parse', 'enum'],
      [
        'an unknown key inside a query',
        { source: { as: 'v', query: { key: { PK: 'a' }, scanForward: true } } },
        '/source/query',
        'additionalProperties',
      ],
      ['a lookup without get', { lookups: { job: { table: 'jobs' } } }, '/lookups/job', 'required'],
      ['a __proto__ key under equals', when({ equals: JSON.parse('{"__proto__": 1}') }), '/skip/0/when/equals', 'propertyNames'],
      [
        'a between with three values',
        { source: { as: 'v', query: { key: { PK: 'a', SK: { between: [1, 2, 3] } } } } },
        '/source/query/key/SK/between',
        'maxItems',
      ],
      ['too many scan segments', { source: { as: 'v', scan: { segments: 1000001 } } }, '/source/scan/segments', 'maximum'],
      ['a negative busy timeout', { target: { sqlite: { path: 'a.db', busyTimeoutMs: -1 } } }, '/target/sqlite/busyTimeoutMs', 'anyOf'],
      ['overwrite as text', { update: { key: { id: 1 }, set: { a: 1 }, overwrite: 'yes' } }, '/update/overwrite', 'anyOf'],
      ['a skip reason in capitals', { skip: [{ reason: 'Bad', when: { exists: 'row.a' } }] }, '/skip/0/reason', 'pattern'],
      ['a run setting of zero', { run: { concurrency: 0 } }, '/run/concurrency', 'minimum'],
      ['a run setting with text around the variable', { run: { limit: `about ${env('N')}` } }, '/run/limit', 'pattern'],
    ])('rejects %s', (_label, patch, instancePath, keyword) => {
      expect(keywordsAt(errorsFor({ ...baseSpec(), ...patch }))).toContainEqual([instancePath, keyword]);
    });
  });
});
