/** `datafix demo`: the shipped fixes on sample data, phase by phase, as a user would run them. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSpecFile } from '../api.js';
import { createMediaTable, mediaItems, putItems, sampleVideoCases, startLocalDynamo } from '../demo/local-dynamo.js';
import { createVeo3Database } from '../demo/sqlite-sample.js';
import { DatafixError } from '../errors.js';
import type { EnvSource } from '../language/env.js';
import { makeTempDir, removeTempDir } from '../safety/temp-dirs.js';
import { plainReporter } from './progress.js';

const PHASES = [
  { title: 'dry run: shows each proposed change, writes nothing', dryRun: true },
  { title: 'live run: makes exactly those changes', dryRun: false },
  { title: 'rerun: nothing left to do', dryRun: false },
] as const;

interface DemoOutput {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
  readonly keep: boolean;
}

async function runPhases(fix: string, env: EnvSource, o: DemoOutput): Promise<void> {
  const spec = fileURLToPath(new URL(`../../fixes/${fix}`, import.meta.url));
  for (const phase of PHASES) {
    o.out.write(`\n--- ${phase.title}\n`);
    const reporter = plainReporter({ specFile: `fixes/${fix}`, dryRun: phase.dryRun, verbose: false, out: o.out, err: o.out });
    const { summary } = await runSpecFile(spec, {
      dryRun: phase.dryRun,
      compile: { env: { ...process.env, ...env } },
      onPlan: (p) => reporter.onPlan(p),
      onConnected: (t) => reporter.onConnected(t),
      onEvent: (e) => reporter.onEvent(e),
    });
    await reporter.end({ summary });
  }
}

/**
 * Writes the demo's sample SQLite database (the sync fix's data, before any run) to `path`, a
 * new file, and returns its absolute path.
 * @throws DatafixError DF742 when the file exists (it is never overwritten).
 */
export function writeSampleDatabase(path: string): string {
  const target = resolve(path);
  if (existsSync(target)) {
    throw new DatafixError('usage', 'DF742', `${target} already exists; give --sample-db a new file (it is never overwritten)`);
  }
  createVeo3Database(target);
  return target;
}

export async function runDemo(o: DemoOutput): Promise<void> {
  const dir = makeTempDir('datafix-demo-');
  try {
    const dbPath = join(dir, 'veo3-automation.db');
    createVeo3Database(dbPath);
    o.out.write(`=== SQLite: fixes/sync-media-generation-ids.yaml on a sample database (${dbPath})\n`);
    await runPhases('sync-media-generation-ids.yaml', { VEO3_DB_PATH: dbPath }, o);
    o.out.write(
      '\nRow gen-008 holds truncated JSON: it fails with reason invalid_json on every run, and a live run exits 1 so that it gets looked at.\n',
    );

    const dynamo = await startLocalDynamo();
    try {
      const table = 'demo-media';
      await createMediaTable(dynamo.endpoint, table);
      await putItems(dynamo.endpoint, table, mediaItems(sampleVideoCases()));
      o.out.write(`\n=== DynamoDB: fixes/i2v-thumbnails.yaml on an in-process DynamoDB-compatible server (${dynamo.endpoint})\n`);
      // A demo must never reach a real account, whatever the caller's environment holds.
      await runPhases('i2v-thumbnails.yaml', { DYNAMODB_TABLE: table, LOCAL_AWS_ENDPOINT: dynamo.endpoint, AWS_REGION: 'us-east-1' }, o);
    } finally {
      await dynamo.stop();
    }
  } finally {
    if (o.keep) o.out.write(`\nsample data kept in ${dir}\n`);
    else removeTempDir(dir);
  }
}
