/**
 * Chooses the adapter for a target. Backends load lazily, so a SQLite run never loads the AWS
 * SDK and `--help` loads neither.
 */
import { DatafixError } from '../errors.js';
import type { TargetPlan } from '../plan/types.js';
import { redactTarget } from './redact.js';
import type { Adapter } from './types.js';

export { redactEndpoint, redactTarget, redactText } from './redact.js';

export interface AdapterOptions {
  /** Dry runs open the target read-only where the backend allows it. */
  readonly readonly?: boolean;
  /** Passed through to the DynamoDB adapter (tests inject faults here). */
  readonly dynamodb?: Record<string, unknown>;
}

export const BACKENDS = ['sqlite', 'dynamodb'] as const;

export async function createAdapter(target: TargetPlan, options: AdapterOptions = {}): Promise<Adapter> {
  switch (target.backend) {
    case 'sqlite': {
      const { createSqliteAdapter } = await import('./sqlite/index.js');
      return createSqliteAdapter(target, { readonly: options.readonly ?? false });
    }
    case 'dynamodb': {
      const { createDynamoAdapter } = await import('./dynamodb/index.js');
      return createDynamoAdapter(target, options.dynamodb);
    }
    default:
      throw new DatafixError(
        'config',
        'DF400',
        `unknown backend \`${(target as { backend: string }).backend}\`; known backends: ${BACKENDS.join(', ')}`,
      );
  }
}

/** A one-line description of a target for output; never includes credentials. */
export function describeTarget(target: TargetPlan): string {
  if (target.backend === 'sqlite') return `sqlite ${target.path}`;
  const t = redactTarget(target) as typeof target;
  return `dynamodb ${t.table} (${t.endpoint ?? t.region})`;
}
