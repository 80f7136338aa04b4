/**
 * Before-images are what each write really replaced, `touch` fields included: another writer that
 * changes a record between datafix's read and its write (status and timestamp) makes that record a
 * `conflict`, keeps the other writer's values, and `datafix undo` never rolls them back.
 * SQLite: the other writer is a trigger, so it lands exactly between the page read and the row's
 * UPDATE. DynamoDB: a second client writes through dynalite while datafix's first UpdateItem is
 * held at a loopback proxy, after every video was read and before the others are written.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { type RunningDynalite, rawClient, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dynamoEnv,
  I2V_FIX,
  jsonSummary,
  pkOf,
  type RawItem,
  SYNC_FIX,
  scanRaw,
  seededTables,
  show,
  sqliteAll,
  sqliteExec,
  videoDataset,
} from './support.js';

const tmp = useTempDirs();
const OTHER_STATUS = 'EDITED_ELSEWHERE';
const OTHER_TIME = '2030-01-01T00:00:00.000Z';

describe('SQLite: a row another writer changed after it was read', () => {
  it('is a conflict, keeps the other writer’s status and updated_at, and undo leaves them alone', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    const { updatable } = createGeneratedVeo3Db(db, 120);
    const [first, ...rest] = updatable;
    // Every third row datafix will write after the first one is changed by the other writer.
    const changed = rest.filter((_, i) => i % 3 === 0);
    expect(changed.length).toBe(Math.ceil(rest.length / 3));
    sqliteExec(
      db,
      `CREATE TRIGGER other_writer AFTER UPDATE OF media_generation_id ON veo3_video_generations
       WHEN NEW.id = '${first}' AND OLD.media_generation_id IS NULL
       BEGIN
         UPDATE veo3_video_generations SET status = '${OTHER_STATUS}', updated_at = '${OTHER_TIME}'
         WHERE id IN (${changed.map((id) => `'${id}'`).join(', ')});
       END`,
    );
    const all = 'SELECT * FROM veo3_video_generations ORDER BY id';
    const before = sqliteAll<Record<string, unknown>>(db, all);
    const journal = dir.file('sync.journal.jsonl');

    const run = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
    expect(run.code, show(run)).toBe(0);
    const summary = jsonSummary(run);
    expect(summary.updated).toBe(updatable.length - changed.length);
    expect((summary.reasons as Record<string, number>).conflict).toBe(changed.length);
    const afterRun = new Map(sqliteAll<Record<string, unknown>>(db, all).map((r) => [r.id, r]));
    for (const id of changed) {
      expect(afterRun.get(id), id).toMatchObject({ media_generation_id: null, status: OTHER_STATUS, updated_at: OTHER_TIME });
    }

    sqliteExec(db, 'DROP TRIGGER other_writer');
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: updatable.length - changed.length, conflicts: 0, failed: 0 });
    // Exactly as before the run, except what the other writer wrote, which survives.
    const expected = before.map((r) => (changed.includes(r.id as string) ? { ...r, status: OTHER_STATUS, updated_at: OTHER_TIME } : r));
    expect(sqliteAll<Record<string, unknown>>(db, all)).toEqual(expected);
  });
});

describe('DynamoDB: an item another client changed after it was read', () => {
  const VIDEOS = 48;
  const data = videoDataset(VIDEOS, 'c');
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  /** PKs the other client changes while datafix's first UpdateItem is held. */
  let changed: string[] = [];

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint, {
      fault: (r) => {
        if (r.operation !== 'UpdateItem' || r.nth !== 1) return undefined;
        const body = JSON.parse(r.body) as { TableName: string; Key: { PK: { S: string } } };
        const rest = data.updatable.filter((pk) => pk !== body.Key.PK.S);
        changed = rest.filter((_, i) => i % 3 === 0);
        return {
          beforeForward: async () => {
            const other = rawClient(dynamo.endpoint);
            try {
              for (const pk of changed) {
                await other.send(
                  new UpdateItemCommand({
                    TableName: body.TableName,
                    Key: { PK: { S: pk }, SK: { S: 'METADATA' } },
                    UpdateExpression: 'SET #s = :s, updatedAt = :t',
                    ExpressionAttributeNames: { '#s': 'status' },
                    ExpressionAttributeValues: { ':s': { S: OTHER_STATUS }, ':t': { S: OTHER_TIME } },
                  }),
                );
              }
            } finally {
              other.destroy();
            }
          },
        };
      },
    });
  }, 30_000 * TIME_SCALE);

  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-concurrent',
  );

  it('is a conflict, keeps the other client’s status and updatedAt, and undo leaves them alone', async () => {
    const table = await freshTable();
    const dir = tmp();
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');
    // One write at a time, so the other client's writes land before datafix writes those items.
    const env = { ...dynamoEnv(table, proxy.endpoint), I2V_BACKFILL_CONCURRENCY: '1' };

    const run = await runCli(['run', I2V_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    expect(changed.length).toBe(Math.ceil((data.updatable.length - 1) / 3));
    const summary = jsonSummary(run);
    expect(summary.updated).toBe(data.updatable.length - changed.length);
    expect((summary.reasons as Record<string, number>).conflict).toBe(changed.length);

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: data.updatable.length - changed.length, conflicts: 0, failed: 0 });
    const expected = before.map(
      (i): RawItem => (changed.includes(pkOf(i)) ? { ...i, status: { S: OTHER_STATUS }, updatedAt: { S: OTHER_TIME } } : i),
    );
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(expected);
  });
});
