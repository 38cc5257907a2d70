/** An export file takes as long as it takes to read: the request timeout must not cut it off, yet still cuts off a hung answer. */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { get } from 'node:http';
import { requestTimeout, streamsLong } from '../../gateway/hardening';

/** Reads the whole answer, or reports that the connection was cut. */
function fetchAll(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.complete ? resolve(body) : reject(new Error('cut off'))));
      res.on('aborted', () => reject(new Error('cut off')));
      res.on('error', () => reject(new Error('cut off')));
    }).on('error', () => reject(new Error('cut off')));
  });
}

describe('request timeout and long streamed answers', () => {
  const app = express();
  app.use(requestTimeout(100));
  const slow = (long: boolean): express.RequestHandler => (_req, res) => {
    if (long) streamsLong(res);
    res.status(200).type('application/fhir+ndjson');
    res.write('{"resourceType":"Patient","id":"a"}\n');
    setTimeout(() => res.end('{"resourceType":"Patient","id":"b"}\n'), 300);
  };
  app.get('/long', slow(true));
  app.get('/hung', slow(false));
  let server: ReturnType<typeof app.listen>;
  let port: number;
  beforeAll(async () => {
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('an answer marked as streaming long is delivered whole past the timeout', async () => {
    expect((await fetchAll(port, '/long')).trimEnd().split('\n')).toHaveLength(2);
  });

  it('any other answer that stalls past the timeout is still cut off', async () => {
    await expect(fetchAll(port, '/hung')).rejects.toThrow('cut off');
  });
});
