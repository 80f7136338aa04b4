/** What the engine reports while it runs; the CLI draws these, tests assert on them. */
import type { Item } from '../adapters/types.js';
import type { WriteAction } from '../plan/types.js';

/** One field of a proposed or applied change. `before` undefined means the field was absent. */
export interface FieldChange {
  readonly field: string;
  readonly before: unknown;
  readonly after: unknown;
  /**
   * Fill-only (`absent`) or compare-and-set on the value read (`unchanged`: `overwrite` fields and
   * `touch` fields alike, so the before-image is what the write replaced). `none` is not produced
   * by the engine; saved plans of older versions may carry it.
   */
  readonly guard: 'absent' | 'unchanged' | 'none';
  /** A `touch` field (e.g. `updated_at`), written alongside the fields that changed. */
  readonly touch?: true;
  /** An `update.remove` field: removed (SQLite: set NULL), guarded on the value read. */
  readonly remove?: true;
}

export type RecordOutcome = 'updated' | 'skipped' | 'failed';

export interface RecordEvent {
  readonly type: 'record';
  readonly outcome: RecordOutcome;
  /** The source record's key. */
  readonly key: Item;
  /** Skip or failure reason. */
  readonly reason?: string;
  /** For failures: what went wrong, without record values. */
  readonly message?: string;
  /** For updates (and would-be updates in a dry run): field-level before → after. */
  readonly changes?: readonly FieldChange[];
  /**
   * For updates: the record written (its table and rendered key), which may differ from the
   * source; `action` when it is deleted or created rather than updated.
   */
  readonly target?: { readonly table?: string; readonly key: Item; readonly action?: WriteAction };
}

export type EngineEvent =
  | { readonly type: 'start'; readonly fix: string; readonly dryRun: boolean; readonly backend: string }
  | RecordEvent
  | {
      readonly type: 'page';
      readonly index: number;
      readonly records: number;
      readonly cursor: unknown;
      readonly segment?: number;
    }
  /**
   * Page `index` (0-based) is being written: its `writes` records go to the journal and then to
   * the target, ahead of its `record` events and its `page` event. Where pages overlap, page
   * N+1's comes before page N's `page` event. A stop asked from here on still lets this page
   * finish, and no later page is written.
   */
  | { readonly type: 'writing'; readonly index: number; readonly writes: number }
  | { readonly type: 'throttled'; readonly records: number; readonly concurrency: number; readonly waitMs: number }
  | { readonly type: 'done'; readonly summary: RunSummary; readonly interrupted: boolean };

/** The run's result; `--json` prints exactly this object. */
export interface RunSummary {
  readonly fix: string;
  readonly dryRun: boolean;
  readonly total: number;
  /**
   * Records written (in a dry run: that would be). For a `delete` or `create` fix (`action`) these
   * are the records deleted or created.
   */
  readonly updated: number;
  /** Present for a fix whose write deletes or creates whole records: what `updated` counts. */
  readonly action?: WriteAction;
  readonly skipped: number;
  readonly failed: number;
  /** Count per skip or failure reason. */
  readonly reasons: Record<string, number>;
  readonly durationMs: number;
}
