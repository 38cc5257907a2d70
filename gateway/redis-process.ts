import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';

export const REDIS_NOT_FOUND =
  "redis-server not found: install the Debian/Ubuntu package 'redis-server' (apt-get install redis-server) or set REDIS_URL";

/** redis-server is not on PATH; its message is the one line to show the operator. */
export class RedisNotFoundError extends Error {
  constructor() {
    super(REDIS_NOT_FOUND);
    this.name = 'RedisNotFoundError';
  }
}

export interface RedisChild {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  pid: number;
  /** SHUTDOWN (AOF is fsynced), then SIGTERM, then SIGKILL; resolves once the child is gone. */
  stop(): Promise<void>;
}

export interface RedisChildOptions {
  /** Redis's working directory (AOF, pid file, log); created if missing. */
  dir: string;
  logger?: Logger;
  /** How long to wait for PONG; default 15 s. */
  startTimeoutMs?: number;
  /** Override the binary (tests); default: `redis-server` from PATH. */
  binary?: string;
}

/** The absolute path of `redis-server` on PATH; throws RedisNotFoundError if there is none. */
export function findRedisServer(pathEnv: string = process.env.PATH ?? ''): string {
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new RedisNotFoundError();
}

/**
 * Starts a private redis-server bound to 127.0.0.1 on a free port, with AOF persistence in
 * `dir`, and waits until it answers PING. The child is killed when this process exits; one left
 * behind by a hard kill is stopped on the next start (reapOrphan).
 */
export async function startRedisServer(opts: RedisChildOptions): Promise<RedisChild> {
  const binary = opts.binary ?? findRedisServer();
  mkdirSync(opts.dir, { recursive: true });
  await reapOrphan(opts.dir, opts.logger);

  // Picking a free port and then binding it is racy; a lost race shows up as an early exit.
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    try {
      return await launch(binary, port, opts);
    } catch (err) {
      lastError = err as Error;
      if (!(err instanceof EarlyExit)) throw err;
      opts.logger?.warn({ port, attempt }, 'redis-server exited during start; retrying on another port');
    }
  }
  throw lastError!;
}

class EarlyExit extends Error {}

async function launch(binary: string, port: number, opts: RedisChildOptions): Promise<RedisChild> {
  const log = opts.logger;
  const pidFile = join(opts.dir, 'redis.pid');
  const logFile = join(opts.dir, 'redis.log');
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--dir', opts.dir,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    '--daemonize', 'no',
    '--pidfile', pidFile,
    '--logfile', logFile,
  ];
  // Its own process group: a signal to ours (Ctrl-C in a terminal, a supervisor or CI signalling
  // `npm start`'s group) reaches only the gateway, which shuts down while Redis still answers
  // and stops it last. Sharing the group, Redis died first and the shutdown hung on it.
  const child = spawn(binary, args, { cwd: opts.dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });

  let gone = false;
  // A failed spawn emits 'error' and possibly no 'exit'; either way the child is gone.
  const exited = new Promise<void>((resolve) => {
    const done = (): void => {
      gone = true;
      resolve();
    };
    child.once('exit', done);
    child.once('error', (err) => {
      stderr += `\n${err.message}`;
      done();
    });
  });

  // Dies with us: 'exit' handlers run on process.exit, uncaught exceptions and normal end.
  const killOnExit = (): void => {
    if (!gone) child.kill('SIGTERM');
  };
  process.once('exit', killOnExit);

  const deadline = Date.now() + (opts.startTimeoutMs ?? 15000);
  for (;;) {
    if (gone) {
      process.removeListener('exit', killOnExit);
      throw new EarlyExit(`redis-server exited during start: ${lastLines(logFile, stderr)}`);
    }
    if (await ping(port, 500)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      process.removeListener('exit', killOnExit);
      throw new Error(`redis-server did not answer PING within ${opts.startTimeoutMs ?? 15000} ms: ${lastLines(logFile, stderr)}`);
    }
    await sleep(50);
  }
  log?.debug({ redisPid: child.pid, port, dir: opts.dir }, 'private redis-server started');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!gone) {
        await command(port, 'SHUTDOWN', 2000).catch(() => undefined);
        if (!(await within(exited, 5000))) {
          child.kill('SIGTERM');
          if (!(await within(exited, 5000))) {
            log?.warn({ redisPid: child.pid }, 'redis-server ignored SIGTERM; killing it');
            child.kill('SIGKILL');
            await exited;
          }
        }
      }
      process.removeListener('exit', killOnExit);
      rmSync(pidFile, { force: true });
    })();
    return stopping;
  };

  return { url: `redis://127.0.0.1:${port}`, pid: child.pid!, stop };
}

/**
 * A redis-server left running by a gateway that was killed hard (SIGKILL, OOM) still owns the
 * AOF in `dir`; two servers on one AOF would corrupt it. Stop such an orphan; refuse to start
 * if the pid file points at a redis-server whose parent is still alive (another gateway).
 */
async function reapOrphan(dir: string, log?: Logger): Promise<void> {
  const pidFile = join(dir, 'redis.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const cmdline = Number.isInteger(pid) && pid > 0 ? procText(`/proc/${pid}/cmdline`) : undefined;
  if (!cmdline || !cmdline.includes('redis-server')) {
    rmSync(pidFile, { force: true });
    return;
  }
  const ppid = Number(procText(`/proc/${pid}/stat`)?.replace(/^.*\)\s+\S+\s+/, '').split(' ')[0]);
  const parentComm = ppid > 1 ? procText(`/proc/${ppid}/comm`)?.trim() : undefined;
  if (parentComm === 'node') {
    throw new Error(`${dir} is in use by redis-server pid ${pid} of another process (pid ${ppid}); is another gateway running with the same DATA_DIR?`);
  }
  log?.warn({ redisPid: pid }, 'stopping a redis-server left behind by an earlier run');
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10000;
  while (procText(`/proc/${pid}/cmdline`) && Date.now() < deadline) await sleep(100);
  if (procText(`/proc/${pid}/cmdline`)) process.kill(pid, 'SIGKILL');
  rmSync(pidFile, { force: true });
}

function procText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function lastLines(logFile: string, stderr: string): string {
  const text = (procText(logFile) ?? '') + stderr;
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(-3).join(' | ') || 'no output';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True if a Redis on 127.0.0.1:port answers PONG within timeoutMs. */
export async function ping(port: number, timeoutMs: number): Promise<boolean> {
  try {
    return (await command(port, 'PING', timeoutMs)).startsWith('+PONG');
  } catch {
    return false;
  }
}

/** Sends one inline command and resolves with the first reply line (or '' if the server closed). */
function command(port: number, cmd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${cmd} timed out`));
    }, timeoutMs);
    const finish = (fn: () => void): void => {
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    socket.once('connect', () => socket.write(`${cmd}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) finish(() => resolve(reply.split('\r\n')[0]));
    });
    socket.once('error', (err) => finish(() => reject(err)));
    socket.once('close', () => finish(() => resolve(reply)));
  });
}

async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return done;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
