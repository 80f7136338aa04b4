/** Hand-built plan pieces for the DynamoDB adapter tests. */
import {
  type Adapter,
  type Item,
  LookupRejected,
  type LookupRequest,
  type SourcePage,
  type SourceRecord,
} from '../../src/adapters/types.js';
import type { Condition, FixPlan, Ref, SourcePlan, TargetPlan } from '../../src/plan/types.js';

export type DynamoTargetPlan = Extract<TargetPlan, { backend: 'dynamodb' }>;

export function target(endpoint: string, table: string): DynamoTargetPlan {
  return { backend: 'dynamodb', table, region: 'us-east-1', endpoint };
}

/** A ref to an attribute (`root`) and nested map keys; names are taken literally (dots allowed). */
export function ref(root: string, ...path: string[]): Ref {
  return { root, path, text: [root, ...path].join('.') };
}

export const exists = (...refs: Ref[]): Condition => ({ op: 'exists', refs });
export const missing = (...refs: Ref[]): Condition => ({ op: 'missing', refs });
export const isNull = (...refs: Ref[]): Condition => ({ op: 'isNull', refs });
export const notNull = (...refs: Ref[]): Condition => ({ op: 'notNull', refs });
export const equals = (...pairs: [Ref, unknown][]): Condition => ({
  op: 'equals',
  pairs: pairs.map(([r, value]) => ({ ref: r, value })),
});
export const all = (...of: Condition[]): Condition => ({ op: 'all', of });
export const any = (...of: Condition[]): Condition => ({ op: 'any', of });
export const not = (of: Condition): Condition => ({ op: 'not', of });

export function scanSource(over: Partial<Extract<SourcePlan, { kind: 'scan' }>> = {}): SourcePlan {
  return { kind: 'scan', as: 'media', segments: 1, consistentRead: false, ...over };
}

/** The GSI8 query of the shipped fix: videos by creation time. */
export function videoQuery(over: Partial<Extract<SourcePlan, { kind: 'query' }>> = {}): SourcePlan {
  return {
    kind: 'query',
    as: 'media',
    index: 'GSI8',
    partitionKey: { name: 'GSI8PK', value: 'MEDIA_BY_TYPE_AND_CREATOR' },
    sortKey: { name: 'GSI8SK', op: 'beginsWith', values: ['video#'] },
    newestFirst: true,
    consistentRead: false,
    ...over,
  };
}

const refTemplate = (root: string, field: string) => ({ kind: 'ref', ref: ref(root, field) }) as const;

/** A minimal plan: read `source`, write thumbnailUrl on the source item itself. */
export function plan(t: DynamoTargetPlan, source: SourcePlan, over: Partial<FixPlan> = {}): FixPlan {
  return {
    planVersion: 1,
    fix: 'test-fix',
    specChecksum: 'test',
    target: t,
    source,
    lookups: [],
    extracts: [],
    skip: [],
    steps: [],
    update: {
      key: [
        ['PK', refTemplate('media', 'PK')],
        ['SK', refTemplate('media', 'SK')],
      ],
      set: [{ field: 'thumbnailUrl', template: { kind: 'literal', value: 'x' }, overwrite: false }],
      touch: [],
      before: { kind: 'context', root: 'media' },
    },
    run: { concurrency: 4, batchSize: 100, pageSize: 100 },
    ...over,
  };
}

/** Reads every page; returns the pages (records only kept when asked, to keep memory small). */
export async function readAll(
  adapter: Adapter,
  source: SourcePlan,
  options: Parameters<Adapter['readPages']>[1],
): Promise<{ pages: SourcePage[]; records: SourceRecord[] }> {
  const pages: SourcePage[] = [];
  const records: SourceRecord[] = [];
  for await (const page of adapter.readPages(source, options)) {
    pages.push(page);
    records.push(...page.records);
  }
  return { pages, records };
}

/** The adapter's lookup answers for keys that must all be valid: a `LookupRejected` fails the test. */
export async function lookupItems(adapter: Adapter, requests: readonly LookupRequest[]): Promise<(Item | undefined)[]> {
  const answers = await adapter.lookup(requests);
  return answers.map((a) => {
    if (a instanceof LookupRejected) throw new Error(`lookup rejected a valid key: ${a.reason} ${a.message}`);
    return a;
  });
}
