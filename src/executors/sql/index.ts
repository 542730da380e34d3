import mysql from 'mysql2/promise';
import type { Pool, ResultSetHeader, FieldPacket, RowDataPacket } from 'mysql2/promise';
import type { RunbookConfig } from '../../config/runbook-config.js';
import { interpolateEnv } from '../../config/runbook-config.js';
import { NotFoundError, RunbookError, SqlExpectError } from '../../errors.js';

export interface SqlResult {
  /** Rows changed by a write, or rows returned by a SELECT. */
  rowsAffected: number;
  columns: string[];
  rows: Record<string, unknown>[];
  durationMs: number;
}

export interface SqlRequest {
  statement: string;
  params: unknown[];
  expect?: { min?: number; max?: number };
}

/** Rows of a preview kept for an approval request. */
export const PREVIEW_ROWS = 50;

/** Thrown for any SQL failure other than an `expect` violation; carries the server's error code. */
export class SqlError extends RunbookError {
  constructor(message: string, context: Record<string, unknown>) {
    super('runbook_sql', message, context);
  }
}

/**
 * MySQL/MariaDB through mysql2 with bound parameters only (prepared statements; multiple statements off),
 * one transaction per step, and `expect` bounds checked before commit.
 */
export class SqlExecutor {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly databases: RunbookConfig['databases'],
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private pool(name: string): Pool {
    let pool = this.pools.get(name);
    if (pool) return pool;
    const db = this.databases[name];
    if (!db) throw new NotFoundError(`no database "${name}" in runbook.yaml (known: ${Object.keys(this.databases).join(', ') || 'none'})`, { database: name });
    pool = mysql.createPool({ uri: interpolateEnv(db.url, this.env).value, connectionLimit: 4, multipleStatements: false, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
    this.pools.set(name, pool);
    return pool;
  }

  /** A read-only query: runs in a READ ONLY transaction so a mistaken write is refused by the server. */
  async query(database: string, statement: string, params: unknown[] = []): Promise<SqlResult> {
    const conn = await this.pool(database).getConnection();
    const started = performance.now();
    try {
      await conn.query('START TRANSACTION READ ONLY');
      try {
        const [rows, fields] = await conn.execute<RowDataPacket[]>(statement, params as never[]);
        return { rowsAffected: rows.length, columns: (fields ?? []).map((f) => f.name), rows: rows as Record<string, unknown>[], durationMs: performance.now() - started };
      } finally {
        await conn.query('ROLLBACK');
      }
    } catch (err) {
      throw wrap(err, database);
    } finally {
      conn.release();
    }
  }

  /** Runs one statement in its own transaction; rolls back when rows affected fall outside `expect`. */
  async execute(database: string, req: SqlRequest): Promise<SqlResult> {
    const conn = await this.pool(database).getConnection();
    const started = performance.now();
    try {
      await conn.beginTransaction();
      let result: SqlResult;
      try {
        const [res, fields] = (await conn.execute(req.statement, req.params as never[])) as [ResultSetHeader | RowDataPacket[], FieldPacket[] | undefined];
        result = Array.isArray(res)
          ? { rowsAffected: res.length, columns: (fields ?? []).map((f) => f.name), rows: res as Record<string, unknown>[], durationMs: 0 }
          : { rowsAffected: res.affectedRows, columns: [], rows: [], durationMs: 0 };
        const { min, max } = req.expect ?? {};
        if ((min !== undefined && result.rowsAffected < min) || (max !== undefined && result.rowsAffected > max)) {
          throw new SqlExpectError(`${result.rowsAffected} rows would change, outside the expected ${min ?? 0}…${max ?? '∞'}; rolled back, nothing changed`, { database, rowsAffected: result.rowsAffected, min, max });
        }
        await conn.commit();
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        throw err;
      }
      result.durationMs = performance.now() - started;
      return result;
    } catch (err) {
      throw wrap(err, database);
    } finally {
      conn.release();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.end()));
    this.pools.clear();
  }
}

function wrap(err: unknown, database: string): Error {
  if (err instanceof RunbookError) return err;
  const e = err as { code?: string; sqlMessage?: string; message?: string };
  return new SqlError(`SQL on ${database} failed: ${e.sqlMessage ?? e.message ?? String(err)}`, { database, sqlCode: e.code });
}
