import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { EventSourcingError } from '../errors/event-sourcing-error';
import type { ReactorQueue } from './reactor-queue';
import type { ReactorQueueOptions } from './reactor-queue-options';
import { withTimeout } from './with-timeout';

/** How long a queue name stays claimed by a database after its last attached process stopped renewing it. */
const CLAIM_SECONDS = 60;
const RENEW_MS = 20_000;

interface RedisCommands {
  set(key: string, value: string, ...args: (string | number)[]): Promise<string | null>;
  get(key: string): Promise<string | null>;
  del(key: string): Promise<number>;
  config(command: 'GET', parameter: string): Promise<string[]>;
}

/**
 * Checks, when a database attaches with a Redis queue, what BullMQ needs of Redis and that no
 * other database uses the same queue name. A Redis that does not answer within `timeoutMs` is
 * not waited for (saves must work without Redis); workers still refuse other databases' jobs.
 *
 * Each attached process claims the queue name for its database in Redis and renews the claim
 * while attached; the claim lapses a minute after the last one stops, so a database that was
 * reset may take the name over after that minute.
 *
 * @returns a function that stops renewing the claim and gives it up.
 * @throws EventSourcingConfigError when another database attached under the same name within the last minute.
 */
export async function checkRedisQueue(
  queue: ReactorQueue,
  options: ReactorQueueOptions,
  onError: (error: unknown) => void,
  timeoutMs = 1500,
): Promise<() => Promise<void>> {
  let client: RedisCommands;
  try {
    client = (await withTimeout(queue.queue.getBackend().client as Promise<unknown>, timeoutMs, 'connecting to Redis')) as RedisCommands;
  } catch {
    return async () => undefined;
  }
  const key = `${options.prefix ?? 'bull'}:${queue.name}:typeorm-es-database`;
  const claim = async () => {
    const taken = await client.set(key, queue.identity, 'EX', CLAIM_SECONDS, 'NX');
    if (taken === 'OK') return;
    const owner = await client.get(key);
    if (owner !== null && owner !== queue.identity) {
      throw new EventSourcingConfigError(
        `queue '${queue.name}' is used by another database (identity ${owner}, attached within the last ${CLAIM_SECONDS} s): give each database a queue name of its own`,
      );
    }
    await client.set(key, queue.identity, 'EX', CLAIM_SECONDS);
  };
  try {
    await withTimeout(claim(), timeoutMs, 'claiming the queue name in Redis');
  } catch (error) {
    if (error instanceof EventSourcingConfigError) throw error;
    return async () => undefined;
  }
  void withTimeout(warnAboutConfig(client, options), timeoutMs, 'reading the Redis configuration').then(
    (warnings) => warnings.forEach((warning) => onError(warning)),
    () => undefined,
  );
  const timer = setInterval(() => void claim().catch(() => undefined), RENEW_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    // Other processes of this database renew the claim within RENEW_MS if they are still attached.
    const release = async () => {
      if ((await client.get(key)) === queue.identity) await client.del(key);
    };
    await withTimeout(release(), timeoutMs, 'releasing the queue name').catch(() => undefined);
  };
}

/** What BullMQ needs of Redis and this Redis lacks. CONFIG may be disabled (managed Redis): then nothing is said. */
async function warnAboutConfig(client: RedisCommands, options: ReactorQueueOptions): Promise<EventSourcingError[]> {
  const warnings: EventSourcingError[] = [];
  let policy: string | undefined;
  let appendOnly: string | undefined;
  try {
    [, policy] = await client.config('GET', 'maxmemory-policy');
    [, appendOnly] = await client.config('GET', 'appendonly');
  } catch {
    return warnings;
  }
  if (policy !== undefined && policy !== 'noeviction') {
    warnings.push(
      new EventSourcingError('REDIS_CONFIG', `Redis maxmemory-policy is '${policy}': BullMQ needs 'noeviction', or Redis may evict queued reactor jobs under memory pressure`),
    );
  }
  if (appendOnly === 'no' && options.keepOutboxUntil !== 'completed') {
    warnings.push(
      new EventSourcingError(
        'REDIS_CONFIG',
        "Redis runs without the append-only file (appendonly no): jobs waiting in Redis are lost if it restarts; turn AOF on, or keep outbox rows until their jobs complete (queue.keepOutboxUntil: 'completed')",
      ),
    );
  }
  return warnings;
}
