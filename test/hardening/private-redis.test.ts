import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRedisServer, ping, startRedisServer } from '../../gateway/redis-process';

/** Field 5 of /proc/<pid>/stat: the process group. */
function processGroup(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.replace(/^.*\)\s+/, '').split(' ')[2]);
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
}

describe('the private redis-server', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'private-redis-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs in its own process group, so a signal to the gateway\'s group leaves it up for an orderly shutdown', async () => {
    const child = await startRedisServer({ dir });
    try {
      expect(processGroup(child.pid)).toBe(child.pid);
      expect(processGroup(child.pid)).not.toBe(processGroup('self'));
      expect(existsSync(join(dir, 'redis.pid'))).toBe(true);
    } finally {
      await child.stop();
    }
    expect(alive(child.pid)).toBe(false);
    expect(existsSync(join(dir, 'redis.pid'))).toBe(false);
  });

  it('stops one left behind by a gateway killed hard before it starts on the same data dir', async () => {
    // A daemonized server is what a SIGKILLed gateway leaves: parent gone, pid file in the dir.
    const port = 20000 + Math.floor(Math.random() * 20000);
    execFileSync(findRedisServer(), ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'yes', '--pidfile', join(dir, 'redis.pid'), '--save', '']);
    let orphan = 0;
    for (let i = 0; i < 100 && !orphan; i++) {
      if (existsSync(join(dir, 'redis.pid')) && (await ping(port, 200))) orphan = Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(alive(orphan)).toBe(true);

    const child = await startRedisServer({ dir });
    try {
      expect(alive(orphan)).toBe(false);
      expect(child.pid).not.toBe(orphan);
      expect(Number(readFileSync(join(dir, 'redis.pid'), 'utf8'))).toBe(child.pid);
    } finally {
      await child.stop();
    }
  });
});
