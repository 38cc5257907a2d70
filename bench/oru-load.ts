/**
 * The benchmarks' HL7 v2 senders: `clients` concurrent clients POSTing ORU^R01 lab messages
 * (8 OBX each, for `patients` synthetic patients) to /ingest/hl7v2, timing each ACK. Run as a
 * process of its own by postOru, so the senders' HTTP client does not share the gateway's
 * event loop: a sender on that loop delays the gateway's work and the gateway delays the
 * sender's clock, and both distort the ACK latency.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { oru, syntheticPatient } from '../fixtures/synthetic/hl7';

/** Message i of a run tagged `tag`: its control id and report id carry both. */
export const oruMessage = (i: number, tag: string, patients: number): string => oru(syntheticPatient(i % patients), `${tag}-${i}`, `${tag}R${i}`, 8, i);

export interface OruLoad {
  base: string;
  token: string;
  clients: number;
  /** Messages to send, unless `until` (epoch ms) is set: then send until that time. */
  count: number;
  tag: string;
  patients: number;
  until?: number;
}

/** Runs the senders in a child process; resolves to every ACK's latency (ms). */
export async function postOru(load: OruLoad): Promise<{ latencies: number[]; sent: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, 'oru-load.ts'), JSON.stringify(load)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((res) => child.on('close', res));
  if (code !== 0) throw new Error(`the HL7 senders exited with ${code}`);
  const latencies = JSON.parse(out) as number[];
  return { latencies, sent: latencies.length };
}

async function send(load: OruLoad): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const client = async (): Promise<void> => {
    for (;;) {
      if (load.until ? Date.now() > load.until : next >= load.count) return;
      const i = next++;
      const t = performance.now();
      const res = await fetch(`${load.base}/ingest/hl7v2`, {
        method: 'POST',
        headers: { 'content-type': 'application/hl7-v2', authorization: `Bearer ${load.token}` },
        body: oruMessage(i, load.tag, load.patients),
      });
      const ack = await res.text();
      latencies.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`message ${i}: HTTP ${res.status} ${ack.replace(/\r/g, '\n')}`);
    }
  };
  await Promise.all(Array.from({ length: load.clients }, client));
  return latencies;
}

if (require.main === module) {
  const { positionals } = parseArgs({ allowPositionals: true });
  send(JSON.parse(positionals[0]) as OruLoad).then(
    (latencies) => process.stdout.write(JSON.stringify(latencies)),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
