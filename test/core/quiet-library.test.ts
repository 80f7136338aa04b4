/**
 * datafix as a library prints nothing of its own: importing it writes nothing, and running a
 * DynamoDB fix through it does not print the AWS SDK's Node-version notice on the output of the
 * program that uses it (the SDK prints it on Node below 22 unless told not to). Each program runs
 * in a process of its own, with the SDK's switch for that notice unset as in a user's shell.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, REPO_ROOT } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { I2V_FIX, startProcess, videoDataset } from '../safety/support.js';

const tmp = useTempDirs();
/** What `import … from 'datafix'` loads: the package's main entry. */
const LIBRARY = join(REPO_ROOT, 'dist', 'index.js');

/** Runs an ES module program with node in `cwd`; the SDK's notice switch is not set. */
function program(source: string, cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  return startProcess(process.execPath, ['--input-type=module', '-e', source], {
    cwd,
    env: { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined },
    input: '',
  }).done;
}

describe('datafix as a library', () => {
  let dynamo: RunningDynalite;
  beforeAll(async () => {
    dynamo = await startDynalite();
  });
  afterAll(async () => {
    await dynamo?.stop();
  });

  it('importing it prints nothing', async () => {
    const r = await program(`import * as datafix from ${JSON.stringify(LIBRARY)}; void datafix;`, tmp().path);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('a DynamoDB fix run through it prints nothing on stderr: no AWS SDK Node-version notice', async () => {
    const { items, updatable } = videoDataset(16);
    await createMediaTable(dynamo.endpoint, 'quiet-lib');
    await seedItems(dynamo.endpoint, 'quiet-lib', items);
    const source = `
      import { runSpecFile } from ${JSON.stringify(LIBRARY)};
      const { summary } = await runSpecFile(${JSON.stringify(I2V_FIX)}, { dryRun: true });
      process.stdout.write(JSON.stringify({ updated: summary.updated }));
    `;
    const r = await program(source, tmp().path, {
      DYNAMODB_TABLE: 'quiet-lib',
      LOCAL_AWS_ENDPOINT: dynamo.endpoint,
      AWS_REGION: 'us-east-1',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ updated: updatable.length });
    // The program's own later clients are not told anything either: the switch is put back.
    const after = await program(
      `import { runSpecFile } from ${JSON.stringify(LIBRARY)};
       await runSpecFile(${JSON.stringify(I2V_FIX)}, { dryRun: true });
       process.stdout.write(String(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED));`,
      tmp().path,
      { DYNAMODB_TABLE: 'quiet-lib', LOCAL_AWS_ENDPOINT: dynamo.endpoint, AWS_REGION: 'us-east-1' },
    );
    expect(after).toEqual({ code: 0, stdout: 'undefined', stderr: '' });
  });
});
