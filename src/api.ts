/**
 * The library entry points the CLI is a thin shell over: validate specs, and run a fix from a
 * spec file end to end (load → compile → connect → check → run → close).
 */
import { createAdapter, describeTarget } from './adapters/registry.js';
import type { Adapter, RecordCount } from './adapters/types.js';
import type { EngineEvent, RunSummary } from './engine/events.js';
import type { RunOptions } from './engine/run.js';
import { runFix } from './engine/run.js';
import { DatafixError, type Diagnostic } from './errors.js';
import { type CompileOptions, compileSpec } from './language/compile.js';
import { loadSpecFile } from './language/load.js';
import type { FixPlan } from './plan/types.js';

export interface ValidateResult {
  readonly file: string;
  readonly ok: boolean;
  readonly diagnostics: readonly Diagnostic[];
  readonly plan?: FixPlan;
}

/** Loads, validates and compiles one spec file, collecting diagnostics instead of throwing. */
export function checkSpecFile(file: string, options: CompileOptions = {}): ValidateResult {
  try {
    const plan = compileSpec(loadSpecFile(file), options);
    return { file, ok: true, diagnostics: [], plan };
  } catch (err) {
    if (err instanceof DatafixError) {
      const diagnostics = err.diagnostics.length
        ? err.diagnostics
        : [{ code: err.code, severity: 'error' as const, message: err.message, file, line: 1, col: 1 }];
      return { file, ok: false, diagnostics };
    }
    throw err;
  }
}

/** Loads and compiles a spec, throwing a DatafixError with every diagnostic when it is invalid. */
export function loadPlan(file: string, options: CompileOptions = {}): FixPlan {
  return compileSpec(loadSpecFile(file), options);
}

export interface RunSpecOptions extends Omit<RunOptions, 'onEvent'> {
  readonly compile?: CompileOptions;
  /** Called once the spec is compiled, before connecting. */
  readonly onPlan?: (plan: FixPlan) => void;
  /** Called once connected and checked. */
  readonly onConnected?: (target: string) => void;
  /** See RunOptions.onEvent: a promise returned for a `page` event holds the run until it settles. */
  readonly onEvent?: (event: EngineEvent) => void | Promise<void>;
  /** Extra adapter options (fault injection in tests). */
  readonly adapter?: { readonly dynamodb?: Record<string, unknown> };
  /** Where to start when resuming, once connected (SQLite keeps checkpoints in the database). */
  readonly resumeCursor?: (adapter: Adapter) => unknown;
  /**
   * The record limit for this process, asked after `resumeCursor` (a resumed run has fewer
   * records left of its limit than the interrupted one had); overrides `limit`.
   */
  readonly limitAfterResume?: () => number | undefined;
  /**
   * Asked for, how many records the run will read (the adapter's count from where the run starts,
   * capped by its limit), before the first page: exact, or an estimate said to be one. Not
   * called when the backend cannot tell (a DynamoDB query).
   */
  readonly onTotal?: (total: RecordCount) => void;
}

export interface RunResult {
  readonly plan: FixPlan;
  readonly summary: RunSummary;
  /** The run stopped early on an interrupt; the checkpoint says where to resume. */
  readonly interrupted: boolean;
  /** Requests the adapter made, by kind. */
  readonly requests: Record<string, number>;
}

export async function runSpecFile(file: string, options: RunSpecOptions): Promise<RunResult> {
  const plan = loadPlan(file, options.compile);
  options.onPlan?.(plan);
  return runPlan(plan, options);
}

export async function runPlan(plan: FixPlan, options: RunSpecOptions): Promise<RunResult> {
  const adapter: Adapter = await createAdapter(plan.target, {
    readonly: options.dryRun,
    ...(options.adapter?.dynamodb ? { dynamodb: options.adapter.dynamodb } : {}),
  });
  try {
    await adapter.check(plan);
    options.onConnected?.(describeTarget(plan.target));
    const resumed = options.resumeCursor?.(adapter);
    const limit = options.limitAfterResume ? options.limitAfterResume() : options.limit;
    if (options.onTotal && adapter.count && !options.signal?.aborted) {
      const cursor = resumed !== undefined && options.cursor === undefined ? resumed : options.cursor;
      const counted = await adapter.count(plan.source, {
        ...(cursor !== undefined ? { cursor } : {}),
        ...(options.segment ? { segment: options.segment } : {}),
      });
      const cap = limit ?? plan.run.limit;
      if (counted) options.onTotal(cap !== undefined && cap < counted.records ? { ...counted, records: cap } : counted);
    }
    const summary = await runFix(plan, adapter, {
      ...options,
      ...(limit !== undefined ? { limit } : {}),
      ...(resumed !== undefined && options.cursor === undefined ? { cursor: resumed } : {}),
    });
    // runFix reports a run as interrupted exactly when the signal was aborted. Not wrapping
    // onEvent to learn it keeps the engine from building record events nobody listens to.
    const interrupted = options.signal?.aborted ?? false;
    // A finished run leaves no checkpoint behind in the target.
    if (!interrupted && options.checkpoint && !options.dryRun && adapter.checkpoints) {
      options.checkpoint.finished?.();
      adapter.checkpoints.clear(options.checkpoint.id);
    }
    return { plan, summary, interrupted, requests: adapter.stats() };
  } finally {
    await adapter.close();
  }
}
