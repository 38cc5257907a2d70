/**
 * `p`, or a rejection with `message` once `ms` have passed: for calls to Redis or the database
 * that must not hold up what waits on them (a health check, a metric, a hand-over) when the
 * other end stops answering.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
