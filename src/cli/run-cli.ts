import type { EventSourcing } from '../event-sourcing';

/** Where {@link runCli} writes, and what stops its `worker` and `relay` commands. */
export interface CliIO {
  /**
   * Results: tables, or one JSON document with `--json`.
   * @defaultValue process.stdout
   */
  stdout?: NodeJS.WritableStream;
  /**
   * Errors (one line each), progress and status lines. A progress bar is drawn when it is a TTY.
   * @defaultValue process.stderr
   */
  stderr?: NodeJS.WritableStream & {
    /** Whether it is a terminal: a progress bar then, plain progress lines otherwise. */
    isTTY?: boolean;
  };
  /** Stops `worker` and `relay`, as SIGTERM and SIGINT do. */
  signal?: AbortSignal;
}

/**
 * Runs one `typeorm-es` command line against an instance the application attached already, so
 * the CLI's commands can be mounted in the application's own process (its DataSource, its
 * dispatcher and queue); `-d` is then not an option. Returns the exit code instead of exiting:
 * 0 done, 1 `verify` left rows that differ from their events, 2 a usage, configuration or
 * database error (one line on `stderr`). The instance stays open: close it yourself.
 *
 * @param argv - the arguments after the program name, e.g. `['verify', 'Subscription', '--fix']`
 *
 * @example
 * ```ts
 * if (process.argv[2] === 'es') process.exitCode = await runCli(es, process.argv.slice(3));
 * ```
 */
export async function runCli(es: EventSourcing, argv: readonly string[], io: CliIO = {}): Promise<number> {
  // Loaded on first use: the main entry point must not load commander and cli-progress.
  const { runProgram } = await import('./program');
  return runProgram(
    {
      streams: { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr },
      signal: io.signal,
      dataSourceOption: false,
      eventSourcing: async () => es,
    },
    argv,
  );
}
