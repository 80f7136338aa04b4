/**
 * A sample VEO3 database laid out as the sync fixes expect (FACTS: table veo3_video_generations,
 * raw_response in both JSON shapes; the video URL columns of newer app versions, still NULL). Used by `datafix demo`, the tests and the benchmark; it is
 * always created fresh in a path the caller chooses, never in a user's real app-data folder.
 */
import Database from 'better-sqlite3';

export const VEO3_SCHEMA = `
  CREATE TABLE veo3_video_generations (
    id TEXT PRIMARY KEY,
    prompt TEXT,
    status TEXT,
    raw_response TEXT,
    media_generation_id TEXT,
    fife_url TEXT,
    serving_base_uri TEXT,
    created_at TEXT,
    updated_at TEXT
  )`;

export interface SampleRow {
  id: string;
  raw_response: string | null;
  media_generation_id?: string | null;
  updated_at?: string;
}

const op = (fields: Record<string, unknown>) => ({ status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL', ...fields });
/** The nested shape; `urls` are the video URLs newer app versions also keep in their own columns. */
const nested = (id: string, urls: { fifeUrl?: string; servingBaseUri?: string } = {}) => ({
  operation: { metadata: { video: { mediaGenerationId: id, ...urls } } },
});

/** One row of each shape and edge case the fix must handle, with ids that look like SQL. */
export function sampleRows(): SampleRow[] {
  return [
    { id: 'gen-001', raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: 'CAUSJGI4-top-001' })] }) },
    {
      id: 'gen-002',
      raw_response: JSON.stringify({
        operations: [
          op(nested('CAUSJGI4-nested-002', { fifeUrl: 'https://fife.example/gen-002', servingBaseUri: 'https://serve.example/gen-002' })),
        ],
      }),
    },
    { id: 'gen-003', raw_response: JSON.stringify({ raw: { operations: [op({ mediaGenerationId: 'CAUSJGI4-raw-003' })] } }) },
    {
      id: 'gen-004',
      raw_response: JSON.stringify({
        raw: { operations: [op(nested('CAUSJGI4-rawnested-004', { fifeUrl: 'https://fife.example/gen-004' }))] },
      }),
    },
    {
      id: 'gen-005',
      raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: 'CAUSJGI4-top-wins-005', ...nested('nested-loses') })] }),
    },
    { id: 'gen-006', raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: '', ...nested('CAUSJGI4-empty-top-006') })] }) },
    { id: 'gen-007', raw_response: JSON.stringify({ operations: [op({ status: 'MEDIA_GENERATION_STATUS_FAILED' })] }) },
    { id: 'gen-008', raw_response: '{"operations": [ {"mediaGenerationId": "trunc' },
    {
      id: "gen-009'); DROP TABLE veo3_video_generations; --",
      raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: 'id with \'quotes\' and "double"' })] }),
    },
    {
      id: 'gen-010',
      raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: 'CAUSJGI4-new-010' })] }),
      media_generation_id: 'KEEP-existing-010',
    },
    { id: 'gen-011', raw_response: null },
    { id: 'gen-012', raw_response: JSON.stringify({ operations: [] }) },
  ];
}

/** Creates (or replaces) a database at `path` holding `rows`. */
export function createVeo3Database(path: string, rows: SampleRow[] = sampleRows()): void {
  const db = new Database(path);
  try {
    db.exec('DROP TABLE IF EXISTS veo3_video_generations');
    db.exec(VEO3_SCHEMA);
    const insert = db.prepare(
      `INSERT INTO veo3_video_generations (id, prompt, status, raw_response, media_generation_id, created_at, updated_at)
       VALUES (?, ?, 'completed', ?, ?, '2025-06-01T10:00:00.000Z', ?)`,
    );
    db.transaction(() => {
      for (const r of rows) {
        insert.run(r.id, `prompt for ${r.id}`, r.raw_response, r.media_generation_id ?? null, r.updated_at ?? '2025-06-01T10:00:00.000Z');
      }
    })();
  } finally {
    db.close();
  }
}
