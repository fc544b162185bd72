import type { EventSourcing } from '../event-sourcing';
import { toJson, type CliStreams } from './output';
import { createProgress, type Progress } from './progress';

/** What every command gets: the attached instance, where to write, and the global options. */
export class CommandRun {
  constructor(
    readonly es: EventSourcing,
    readonly streams: CliStreams,
    /** `--json`: one JSON document on stdout instead of tables. */
    readonly json: boolean,
    /** `--no-progress` turns progress off. */
    readonly showProgress: boolean,
    /** Stops `worker` and `relay`, besides SIGTERM and SIGINT. */
    readonly signal: AbortSignal | undefined,
  ) {}

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
}
