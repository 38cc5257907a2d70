/**
 * The R4 websocket channel: a client opens `/fhir/websocket` with its bearer token, sends
 * `bind <Subscription id>` for each websocket Subscription of its facility, hears `bound <id>`,
 * then `ping <id>` whenever the Subscription has a notification (and re-reads with its token).
 * Notifications reach this process from the delivery worker over Redis pub/sub
 * (workers/notify/delivery.ts); a channel is subscribed only while a socket here is bound to
 * it, so a delivery with no bound socket anywhere fails, is retried, and is not lost unseen.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Subscription } from '@medplum/fhirtypes';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { FhirError } from '../../store/errors';
import type { Repository } from '../../store/repository';
import { websocketChannel } from '../../workers/notify/queue';
import { watchOf } from '../../workers/notify/subscription';
import { BEARER } from '../auth/authenticate';
import type { Principal } from '../auth/principal';
import { isOffice, mayAccess } from '../auth/require';

export const WEBSOCKET_PATH = '/fhir/websocket';

export interface WebsocketDeps {
  repo: Repository;
  verify(token: string): Promise<Principal>;
  /** A connection this module may put in subscriber mode (a `duplicate()` of the gateway's). */
  subscriber: Redis;
  prefix: string;
  log: Logger;
}

export function attachWebsocket(server: Server, deps: WebsocketDeps): { close(): Promise<void> } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const bound = new Map<string, Set<WebSocket>>(); // channel -> sockets
  deps.subscriber.on('message', (channel: string) => {
    const id = channel.slice(channel.lastIndexOf(':') + 1);
    for (const ws of bound.get(channel) ?? []) ws.send(`ping ${id}`);
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== WEBSOCKET_PATH) return refuse(socket, 404, 'Not Found');
    const token = BEARER.exec((req.headers.authorization ?? '').trim())?.[1];
    if (!token) return refuse(socket, 401, 'Unauthorized');
    deps.verify(token).then(
      (principal) => wss.handleUpgrade(req, socket, head, (ws) => serve(ws, principal)),
      () => refuse(socket, 401, 'Unauthorized'),
    );
  };

  const serve = (ws: WebSocket, principal: Principal): void => {
    const mine = new Set<string>();
    ws.on('message', (data) => {
      const [verb, id, ...rest] = data.toString().trim().split(/\s+/);
      if (verb !== 'bind' || !id || rest.length > 0) return void ws.send('error send "bind <Subscription id>"');
      bind(principal, id).then(
        async (channel) => {
          if (ws.readyState !== ws.OPEN) return;
          if (!bound.has(channel)) {
            bound.set(channel, new Set());
            await deps.subscriber.subscribe(channel);
          }
          bound.get(channel)!.add(ws);
          mine.add(channel);
          ws.send(`bound ${id}`);
        },
        (err: unknown) => ws.send(`error ${id} ${err instanceof FhirError ? err.message : 'the gateway could not bind it'}`),
      );
    });
    ws.on('close', () => {
      for (const channel of mine) {
        const sockets = bound.get(channel);
        sockets?.delete(ws);
        if (sockets?.size === 0) {
          bound.delete(channel);
          deps.subscriber.unsubscribe(channel).catch((err: Error) => deps.log.warn({ err: err.message }, 'could not unsubscribe a websocket channel'));
        }
      }
    });
  };

  /** The channel of Subscription `id`, if `principal` may bind it: one it can read, of its facility, on the websocket channel. */
  const bind = async (principal: Principal, id: string): Promise<string> => {
    if (!mayAccess(principal, 'Subscription', 'r')) throw new FhirError(403, 'forbidden', 'binding needs the scope to read Subscriptions');
    const watch = watchOf((await deps.repo.withAccess(principal.access).read('Subscription', id)).resource as Subscription & { id: string });
    if (watch.channel.type !== 'websocket') throw new FhirError(422, 'business-rule', 'its channel is not websocket');
    if (!isOffice(principal) && watch.author !== principal.facility) throw new FhirError(403, 'forbidden', `it belongs to ${watch.author ?? 'the consortium office'}`);
    return websocketChannel(deps.prefix, id);
  };

  server.on('upgrade', onUpgrade);
  return {
    async close() {
      server.off('upgrade', onUpgrade);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      // Not quit(): with Redis already gone (stopped with the gateway) it would wait for a reconnect that never comes.
      deps.subscriber.disconnect();
    },
  };
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
