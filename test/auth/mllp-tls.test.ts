import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { adt, syntheticPatient } from '../../fixtures/synthetic/hl7';
import { createMllpServer } from '../../gateway/ingest/mllp';
import { parseMllpPeers } from '../../gateway/ingest/mllp-peers';
import type { Hl7Receipt } from '../../gateway/ingest/service';
import { silent } from '../support/ingest';
import { sendFramed } from '../support/mllp';

/** A throwaway CA, the listener's certificate and client certificates, made with openssl for this run only. */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ca = (name: string) => ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '1', '-subj', `/CN=${name}`);
  const issued = (name: string, cn: string, by: string) => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${by}.pem`, '-CAkey', `${by}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1');
  };
  ca('consortium-ca');
  ca('other-ca');
  issued('server', 'mllp.gateway.test', 'consortium-ca');
  issued('city', 'city-hospital', 'consortium-ca');
  issued('forged-city', 'city-hospital', 'other-ca');
}

describe('MLLP over mutual TLS', () => {
  let dir: string;
  let server: Server;
  let port: number;
  const received: ReadonlySet<string>[] = [];
  const file = (name: string) => readFileSync(join(dir, name));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mllp-tls-'));
    makeCertificates(dir);
    // The receipt is the ingest service's; here it only records which facilities the connection may send for.
    const receive = async (_m: Buffer, facilities: ReadonlySet<string>): Promise<Hl7Receipt> => {
      received.push(facilities);
      return { code: 'AA', ack: Buffer.from('MSH|^~\\&|FHIRGW|CONSORTIUM\rMSA|AA|T-1\r'), charset: 'UTF-8' };
    };
    // Loopback listed for every facility, as in the demo: under TLS the certificate decides instead.
    server = createMllpServer({ receive, peers: parseMllpPeers(undefined, true), tls: { cert: file('server.pem'), key: file('server.key'), ca: file('consortium-ca.pem') }, log: silent });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** One message over TLS with the given client certificate; the ACK, or null when the gateway refused. */
  function send(client?: string): Promise<string | null> {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: file('consortium-ca.pem'),
      ...(client ? { cert: file(`${client}.pem`), key: file(`${client}.key`) } : {}),
      checkServerIdentity: () => undefined, // the test's server certificate names no IP address
    });
    return sendFramed(socket, adt('A04', syntheticPatient(720), 'T-1'));
  }

  it('a certificate from the consortium CA sends for exactly the facility in its CN', async () => {
    expect(await send('city')).toContain('MSA|AA|T-1');
    expect([...received[received.length - 1]]).toEqual(['city-hospital']);
  });

  it('no client certificate, or one from another CA, is refused at the handshake', async () => {
    const before = received.length;
    expect(await send()).toBeNull();
    expect(await send('forged-city')).toBeNull();
    expect(received).toHaveLength(before);
  });
});
