/**
 * `datafix new`: a commented starting spec and a test file with passing cases, so an author
 * begins from something that validates, tests green, and shows each section's shape.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatafixError } from './errors.js';

export type Backend = 'sqlite' | 'dynamodb';

const SCHEMAS = fileURLToPath(new URL('../schemas/', import.meta.url));

function schemaLine(dir: string, file: string): string {
  const rel = relative(dir, join(SCHEMAS, file)).split(sep).join('/');
  return `# yaml-language-server: $schema=${rel}`;
}

function sqliteSpec(name: string, envVar: string, dir: string): string {
  return `${schemaLine(dir, 'fix.schema.json')}
# ${name}: say here what is wrong in the data, and what this fix does about it.
# Reference: docs/spec.md. Check it with \`datafix validate\`, read it back with \`datafix explain\`,
# and always run it with --dry-run first.
name: ${name}
description: Copy each order's country from its JSON payload into the country column where it is empty.

target:
  sqlite:
    # Connection settings come from the environment, never from the spec.
    path: \${${envVar}}

source:
  as: row # each row is called \`row\` below
  table: orders
  # Structured, never SQL text: column names are checked against the live schema.
  where: { isNull: country }

extract:
  country:
    from: row.payload
    parse: json # a row whose payload is not valid JSON fails with reason invalid_json
    first: # the first non-empty match wins
      - $.shipping.address.country
      - $.billing.address.country

skip:
  # Rules run in order; the first that matches gives the row's reason.
  - reason: no_country_in_payload
    when: { missing: country }

fail:
  # Like skip, but the row counts as failed (exit 1) and is left for a person to look at.
  - reason: not_a_country_code
    when: { expr: 'size(country.trim()) != 2' }

# The write. Also: \`remove: [field]\` here removes fields; a \`delete:\` or \`create:\` section instead
# of \`update:\` deletes records (only while unchanged) or creates them where absent (docs/spec.md).
update:
  key: { id: "{{ row.id }}" } # the primary key: one update addresses exactly one row
  set:
    # Fill-only: written only where country is still NULL, checked again inside the UPDATE.
    # An expression (docs/expressions.md): the code trimmed and in capitals.
    country: "{{ country.trim().upperAscii() }}"
  touch:
    updated_at: "{{ now }}" # written only when something else changes

run:
  batchSize: 1000 # rows per transaction
`;
}

/**
 * The command that runs the test file, as typed in the directory `datafix new` ran in: the path
 * it was written to (`fixes/NAME.test.yaml`), not its bare name, which resolves only inside `dir`.
 */
function testCommand(name: string, dir: string): string {
  return `npx datafix test ${join(dir, `${name}.test.yaml`).split(sep).join('/')}`;
}

function sqliteTests(name: string, dir: string): string {
  return `${schemaLine(dir, 'fix-test.schema.json')}
# Cases for ${name}.yaml. Run them with: ${testCommand(name, dir)}
# The table as production has it (copy the types from its CREATE TABLE), so values compare and
# convert as they do there. Remove \`tables\` and datafix infers untyped tables from the fix.
tables:
  orders:
    columns: { id: TEXT, payload: TEXT, country: TEXT, updated_at: TEXT }
    primaryKey: [id]
cases:
  - name: the shipping country is copied; the billing one is the fallback
    given:
      orders:
        - { id: o1, payload: '{"shipping":{"address":{"country":"SE"}},"billing":{"address":{"country":"NO"}}}', country: null }
        - { id: o2, payload: '{"billing":{"address":{"country":" dk"}}}', country: null }
    expect:
      summary: { total: 2, updated: 2, skipped: 0, failed: 0 }
      records:
        orders:
          - { id: o1, country: SE, updated_at: "{{ now }}" }
          - { id: o2, country: DK, updated_at: "{{ now }}" }

  - name: a payload without a country is skipped; invalid JSON and a name instead of a code fail that row only
    given:
      orders:
        - { id: o3, payload: '{"shipping":{}}', country: null }
        - { id: o4, payload: '{not json', country: null }
        - { id: o5, payload: '{"shipping":{"address":{"country":"FI"}}}', country: FR }
        - { id: o6, payload: '{"shipping":{"address":{"country":"Sweden"}}}', country: null }
    expect:
      summary: { total: 3, updated: 0, skipped: 1, failed: 2, reasons: { no_country_in_payload: 1, invalid_json: 1, not_a_country_code: 1 } }
`;
}

function dynamoSpec(name: string, prefix: string, dir: string): string {
  return `${schemaLine(dir, 'fix.schema.json')}
# ${name}: say here what is wrong in the data, and what this fix does about it.
# Reference: docs/spec.md. Check it with \`datafix validate\`, read it back with \`datafix explain\`,
# and always run it with --dry-run first.
name: ${name}
description: Copy each order's customer email from the customer item onto the order where it is missing.

target:
  dynamodb:
    # Connection settings come from the environment (or --env NAME loading .env.NAME).
    table: \${${prefix}_TABLE}
    region: \${AWS_REGION:-us-east-1}
    endpoint: \${${prefix}_ENDPOINT:-} # empty: the AWS endpoint; set it for a local server

source:
  as: order
  query:
    index: GSI1 # orders by status
    key: { GSI1PK: ORDER_BY_STATUS, GSI1SK: { beginsWith: "OPEN#" } }
    pageSize: 100

lookups:
  # Batched: one BatchGetItem per 100 orders. A missing customerId means no lookup and no customer.
  customer:
    get: { PK: "CUSTOMER#{{ order.customerId }}", SK: PROFILE }
  # A lookup can also give several records as a list: \`query: { key: { PK: "…", SK: { beginsWith: "…" } } }\`
  # with \`max\` (docs/spec.md, Lookups of several records).

skip:
  # Rules run in order; this one needs only the order, so it runs before any lookup.
  - reason: already_has_email
    when: { exists: order.customerEmail }
  - reason: customer_not_found
    when: { missing: customer }
  - reason: customer_has_no_email
    when: { missing: customer.email }

fail:
  # Like skip, but the order counts as failed (exit 1) and is left for a person to look at.
  # Comparisons (beginsWith, contains, lt, between, in, type, …) mean what DynamoDB means by them.
  - reason: customer_email_is_not_an_address
    when: { not: { contains: { customer.email: "@" } } }

# The write. Also: \`remove: [field]\` here removes fields; a \`delete:\` or \`create:\` section instead
# of \`update:\` deletes records (only while unchanged) or creates them where absent (docs/spec.md).
update:
  key: { PK: "{{ order.PK }}", SK: "{{ order.SK }}" } # the table's key: one item per update
  set:
    # Fill-only: written only where customerEmail is absent, with attribute_not_exists in the write.
    customerEmail: "{{ customer.email }}"
  touch:
    updatedAt: "{{ now }}" # written only when something else changes

run:
  concurrency: \${${prefix}_CONCURRENCY:-10}
`;
}

function dynamoTests(name: string, dir: string): string {
  return `${schemaLine(dir, 'fix-test.schema.json')}
# Cases for ${name}.yaml. \`target\` is the fix's own table. Run them with: ${testCommand(name, dir)}
# The table's keys and the index the fix queries, as production has them (a fix querying an
# index the table lacks fails here as it would there).
tables:
  target:
    partitionKey: PK
    sortKey: SK
    indexes:
      GSI1: { partitionKey: GSI1PK, sortKey: GSI1SK }
cases:
  - name: the customer's email is copied onto the order
    given:
      target:
        - { PK: ORDER#1, SK: METADATA, GSI1PK: ORDER_BY_STATUS, GSI1SK: "OPEN#2025-01-01#1", customerId: c1 }
        - { PK: CUSTOMER#c1, SK: PROFILE, email: ada@example.com }
    expect:
      summary: { total: 1, updated: 1 }
      records:
        target:
          - { PK: ORDER#1, SK: METADATA, customerEmail: ada@example.com, updatedAt: "{{ now }}" }

  - name: every skip reason; closed orders are not read
    given:
      target:
        - { PK: ORDER#2, SK: METADATA, GSI1PK: ORDER_BY_STATUS, GSI1SK: "OPEN#2025-01-02#2", customerId: c2, customerEmail: own@example.com }
        - { PK: ORDER#3, SK: METADATA, GSI1PK: ORDER_BY_STATUS, GSI1SK: "OPEN#2025-01-03#3", customerId: nobody }
        - { PK: ORDER#4, SK: METADATA, GSI1PK: ORDER_BY_STATUS, GSI1SK: "OPEN#2025-01-04#4", customerId: c4 }
        - { PK: CUSTOMER#c4, SK: PROFILE }
        - { PK: ORDER#5, SK: METADATA, GSI1PK: ORDER_BY_STATUS, GSI1SK: "CLOSED#2025-01-05#5", customerId: c1 }
    expect:
      summary: { total: 3, updated: 0, skipped: 3, reasons: { already_has_email: 1, customer_not_found: 1, customer_has_no_email: 1 } }

  - name: a customer email without an @ fails that order and is not copied
    given:
      target:
        - { PK: ORDER#6, SK: METADATA, GSI1PK: ORDER_BY_STATUS, GSI1SK: "OPEN#2025-01-06#6", customerId: c6 }
        - { PK: CUSTOMER#c6, SK: PROFILE, email: n/a }
    expect:
      summary: { total: 1, updated: 0, failed: 1, reasons: { customer_email_is_not_an_address: 1 } }
      records:
        target:
          - { PK: ORDER#6, SK: METADATA, customerEmail: { $absent: true } }
`;
}

export interface ScaffoldResult {
  readonly spec: string;
  readonly test: string;
}

/** Writes NAME.yaml and NAME.test.yaml into `dir`; refuses to overwrite existing files. */
export function scaffold(name: string, backend: Backend, dir: string): ScaffoldResult {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new DatafixError(
      'usage',
      'DF601',
      `fix name \`${name}\` must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  const spec = join(dir, `${name}.yaml`);
  const test = join(dir, `${name}.test.yaml`);
  for (const f of [spec, test]) {
    if (existsSync(f)) throw new DatafixError('usage', 'DF602', `${f} already exists; choose another name or remove it`);
  }
  mkdirSync(dir, { recursive: true });
  const prefix = name.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  writeFileSync(spec, backend === 'sqlite' ? sqliteSpec(name, `${prefix}_DB_PATH`, dir) : dynamoSpec(name, prefix, dir));
  writeFileSync(test, backend === 'sqlite' ? sqliteTests(name, dir) : dynamoTests(name, dir));
  return { spec, test };
}
