import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp } from '../../gateway/app';
import type { AuthOptions } from '../../gateway/auth';
import { testAuth } from './auth';
import { openIndexedStore } from './mpi';
import { openTestStore, type Driver, type TestStore } from './stores';

export interface TestServer {
  store: TestStore;
  app: ReturnType<typeof createApp>;
  server: Server;
  baseUrl: string;
  close(): Promise<void>;
}

/** The real app over a fresh store, listening on a free loopback port. */
export async function startTestServer(driver: Driver, opts: { patientIndex?: boolean; auth?: Partial<AuthOptions>; onError?: (err: unknown) => void } = {}): Promise<TestServer> {
  const indexed = opts.patientIndex ? await openIndexedStore(driver) : undefined;
  const store = indexed ?? (await openTestStore(driver));
  const app = createApp({ repo: store.repo, mpi: indexed?.mpi, auth: await testAuth(opts.auth), onError: opts.onError });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    store,
    app,
    server,
    baseUrl: `http://127.0.0.1:${port}/fhir`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}
