import type { Socket } from 'node:net';

/** Writes one MLLP-framed message and waits for the framed reply; null when the gateway hangs up instead. */
export async function sendFramed(socket: Socket, message: string): Promise<string | null> {
  socket.on('error', () => undefined); // a refused peer sees a reset; the null answer says so
  let reply = Buffer.alloc(0);
  const answered = new Promise<string | null>((done) => {
    socket.on('data', (c: Buffer) => {
      reply = Buffer.concat([reply, c]);
      if (reply.includes(0x1c)) done(reply.subarray(1, reply.indexOf(0x1c)).toString('utf8'));
    });
    socket.on('close', () => done(null));
  });
  socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])]));
  const result = await answered;
  socket.destroy();
  return result;
}
