/**
 * Every reason datafix itself gives a record in a run's summary: the skips it decides and the
 * failures. A spec's skip rule cannot take one of these names (DF210), so a count under
 * `reasons` always means one thing. Adapters can report only failure reasons listed here (their
 * `WriteResult` and `LookupRejected` are typed with them).
 */
export const ENGINE_REASONS = [
  // Skips
  'no_change',
  'conflict',
  'not_found',
  'duplicate_target',
  // A create whose key already names a record: never overwritten.
  'exists',
  // Failures of the record's data or the spec's templates
  'invalid_json',
  'extract_failed',
  'template_error',
  'expression_error',
  'expression_limit',
  'value_too_deep',
  'value_not_exact',
  'value_invalid',
  'number_out_of_range',
  'key_invalid',
  'key_too_large',
  'lookup_over_max',
  'item_too_large',
  // A DynamoDB delete whose guard (every attribute of the before-image) breaks DynamoDB's
  // expression limits: the record is not deleted unguarded.
  'delete_guard_too_large',
  // Failures of the write itself
  'write_rejected',
  'write_failed',
  'throttled',
] as const;

export type EngineReason = (typeof ENGINE_REASONS)[number];

/** The reasons a record can fail with (the others are skips). */
export type FailureReason = Exclude<EngineReason, 'no_change' | 'conflict' | 'not_found' | 'duplicate_target' | 'exists'>;
