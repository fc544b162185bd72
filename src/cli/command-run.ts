import type { Queue } from 'bullmq';
import type { EventSourcing } from '../event-sourcing';
import { withTimeout } from '../reactors/with-timeout';
import { CliError } from './errors';
import { toJson, type CliStreams } from './output';
import type { ProgramContext } from './program';
import { createProgress, type Progress } from './progress';
import { queueOf } from './queue';

/** How long a command waits for the queue's server to answer before giving up with one line. */
const QUEUE_TIMEOUT_MS = 5000;

/** What every command gets: the attached instance, where to write, and the global options. */
export class CommandRun {
  readonly streams: CliStreams;
  /** Stops `worker` and `relay`, besides SIGTERM and SIGINT. */
  readonly signal: AbortSignal | undefined;

  constructor(
    readonly es: EventSourcing,
    private readonly context: Pick<ProgramContext, 'streams' | 'signal' | 'connectionTrouble' | 'started'>,
    /** `--json`: one JSON document on stdout instead of tables. */
    readonly json: boolean,
    /** `--no-progress` turns progress off. */
    readonly showProgress: boolean,
  ) {
    this.streams = context.streams;
    this.signal = context.signal;
  }

  /** A line (or lines) of human output on stdout. */
  print(text: string): void {
    this.streams.stdout.write(`${text}\n`);
  }

  printJson(value: unknown): void {
    this.streams.stdout.write(`${toJson(value)}\n`);
  }

  /** A status line on stderr, for humans watching; stdout keeps the result alone. */
  status(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }

  progress(label: string): Progress {
    return createProgress(this.streams, label, this.showProgress);
  }

  /**
   * The queue, once its server answered; undefined without a queue. Attaching does not wait for
   * Redis (saves must work without it) and BullMQ waits for it forever, so this is bounded.
   */
  async reachQueue(): Promise<Queue | undefined> {
    const queue = queueOf(this.es);
    if (queue) {
      try {
        await withTimeout(queue.getJobCounts('active'), QUEUE_TIMEOUT_MS, 'the reactor queue');
      } catch (error) {
        const trouble = this.context.connectionTrouble?.() ?? (error as Error).message;
        throw new CliError(`cannot reach the reactor queue's server (queue ${queue.name}) within ${QUEUE_TIMEOUT_MS / 1000} s: ${trouble}`, { cause: error });
      }
    }
    this.context.started?.();
    return queue;
  }
}
