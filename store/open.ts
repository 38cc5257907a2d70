import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from './db/database';
import { migrate } from './db/migrations';
import { openPostgres } from './db/pg';
import { openPglite } from './db/pglite';
import { Repository, type StoreOptions } from './repository';

export interface StoreConfig {
  /** PostgreSQL when set; otherwise embedded PGlite. */
  databaseUrl?: string;
  /** Where PGlite keeps its cluster; undefined keeps it in memory. */
  dataDir?: string;
  maxConnections?: number;
}

export interface OpenStore {
  repo: Repository;
  db: Database;
  close(): Promise<void>;
}

/** Opens the configured database, brings its schema up to date and returns the repository. */
export async function openStore(config: StoreConfig, options: StoreOptions = {}): Promise<OpenStore> {
  let db: Database;
  if (config.databaseUrl) {
    db = openPostgres(config.databaseUrl, config.maxConnections);
  } else {
    let dir: string | undefined;
    if (config.dataDir) {
      dir = join(config.dataDir, 'pglite');
      mkdirSync(dir, { recursive: true });
    }
    db = await openPglite(dir);
  }
  await migrate(db);
  return { repo: new Repository(db, options), db, close: () => db.close() };
}
