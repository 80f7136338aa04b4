/** datafix as a library: everything the CLI does is callable from here. */

export { createAdapter, describeTarget } from './adapters/registry.js';
export type { Adapter, RecordCount, SourcePage, SourceRecord, WriteRequest, WriteResult } from './adapters/types.js';
export type { RunResult, RunSpecOptions, ValidateResult } from './api.js';
export { checkSpecFile, loadPlan, runPlan, runSpecFile } from './api.js';
export type { EngineEvent, FieldChange, RunSummary } from './engine/events.js';
export type { RunOptions } from './engine/run.js';
export { runFix } from './engine/run.js';
export type { Diagnostic } from './errors.js';
export { DatafixError, formatDiagnostic } from './errors.js';
export { compileSpec } from './language/compile.js';
export { loadEnvFile } from './language/env.js';
export { loadSpecFile, loadSpecText } from './language/load.js';
export type { FixSpec } from './language/types.js';
export type { FixPlan } from './plan/types.js';
