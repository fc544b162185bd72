import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { EventSourcing } from '../event-sourcing';
import { CommandRun } from './command-run';
import { baseline } from './commands/baseline';
import { history } from './commands/history';
import { rebuild } from './commands/rebuild';
import { relay, worker } from './commands/run-until-stopped';
import { schemaSql } from './commands/schema-sql';
import { state } from './commands/state';
import { stats } from './commands/stats';
import { trace } from './commands/trace';
import { verify } from './commands/verify';
import { errorLine } from './errors';
import type { CliStreams } from './output';

/** How the commands get their instance: the bin loads `-d`, an application passes its own. */
export interface ProgramContext {
  readonly streams: CliStreams;
  readonly signal?: AbortSignal;
  /** Whether `-d, --data-source <file>` is an option (the bin) or the instance is given (runCli). */
  readonly dataSourceOption: boolean;
  /**
   * The attached instance; called once a command runs, never for `--help` or a parse error.
   * `withReactors` for the commands that use the dispatcher or the queue (trace, stats, worker,
   * relay); the others need neither, nor Redis.
   */
  eventSourcing(dataSourceFile: string | undefined, withReactors: boolean): Promise<EventSourcing>;
  /** The last connection error held back while starting, for the line that reports the queue out of reach. */
  connectionTrouble?(): string | undefined;
  /** The queue answered: from now on, report every error as it comes. */
  started?(): void;
}

interface GlobalOptions {
  dataSource?: string;
  json?: boolean;
  progress: boolean;
}

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) throw new InvalidArgumentError('must be a positive integer.');
  return number;
}

/** Any integer: the range of a version is the library's to check, with the same message as for any caller. */
function integer(value: string): number {
  const number = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(number)) throw new InvalidArgumentError('must be an integer.');
  return number;
}

const isoPattern = /^(\d{4})-(\d{2})-(\d{2})(?:[T ]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An ISO 8601 date or date-time; JavaScript reads a date-time without a zone as local time. A day
 * the month does not have is refused: JavaScript would roll February 30th over into March.
 */
function isoDate(value: string): Date {
  const match = isoPattern.exec(value);
  const date = new Date(value);
  const [year, month, day] = match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [];
  const realDay = match && month! >= 1 && month! <= 12 && new Date(Date.UTC(year!, month! - 1, day!)).getUTCDate() === day;
  if (!realDay || Number.isNaN(date.getTime())) {
    throw new InvalidArgumentError('must be an ISO 8601 date or date-time, e.g. 2025-06-01T12:00:00Z.');
  }
  return date;
}

const helpEpilog = `
Exit codes: 0 done; 1 verify found rows that differ from their events; 2 a usage,
configuration or database error (one line on stderr).`;

const dataSourceEpilog = `
-d takes the module TypeORM's CLI takes: a DataSource exported as the module or as its only
DataSource export (a Promise of one counts). An export named eventSourcing holds the options
of EventSourcing.attach (dispatcher, queue). TypeScript files need ts-node installed.`;

/**
 * Parses `argv` (the arguments after the program name) and runs the command. Returns the exit
 * code: help and results 0, drift left by verify 1, every error 2 with one line on stderr.
 */
export async function runProgram(context: ProgramContext, argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('typeorm-es');
  program
    .description('Inspect and repair the event-sourced aggregates of a TypeORM DataSource, and run its reactor workers.')
    .configureOutput({
      writeOut: (text) => context.streams.stdout.write(text),
      writeErr: (text) => context.streams.stderr.write(text),
      // Commander's errors may span lines (a suggestion on the next one): scripts get one.
      outputError: (text, write) => write(`${text.replace(/\s*\n\s*/g, ' ').trim()}\n`),
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .helpCommand(false)
    .addHelpText('after', context.dataSourceOption ? `${helpEpilog}\n${dataSourceEpilog}` : helpEpilog);
  if (context.dataSourceOption) program.option('-d, --data-source <file>', 'the module exporting your DataSource (and eventSourcing options)');
  program.option('--json', 'print one JSON document (objects with type and data, not class instances) instead of tables');
  program.option('--no-progress', 'no progress bar or progress lines on stderr');

  /** Wraps a command: the instance is loaded only now, after parsing succeeded. */
  const action =
    <A extends unknown[]>(run: (command: CommandRun, ...args: A) => Promise<number>, { withReactors = false } = {}) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const globals = command.optsWithGlobals<GlobalOptions>();
      const es = await context.eventSourcing(globals.dataSource, withReactors);
      const commandRun = new CommandRun(es, context, Boolean(globals.json), globals.progress !== false);
      exitCode = await run(commandRun, ...(args.slice(0, -1) as A));
    };

  program
    .command('history')
    .description("an aggregate's events in version order")
    .argument('<Aggregate>', 'the aggregate entity name, e.g. Subscription')
    .argument('<id>', 'its primary key')
    .action(action((run, aggregate: string, id: string) => history(run, aggregate, id)));
  program
    .command('state')
    .description('an aggregate replayed from its events: after a version, at a moment, or now')
    .argument('<Aggregate>', 'the aggregate entity name')
    .argument('<id>', 'its primary key')
    .addOption(new Option('--at <iso>', 'replay the events written at or before this ISO 8601 moment').argParser(isoDate))
    .addOption(new Option('--version <n>', 'replay versions 1 to n').argParser(integer))
    .action(action((run, aggregate: string, id: string, options: { at?: Date; version?: number }) => state(run, aggregate, id, options)));
  program
    .command('verify')
    .description('rows whose columns differ from the replay of their events (exit code 1 while any remains)')
    .argument('<Aggregate>', 'the aggregate entity name')
    .option('--id <id>', 'verify this aggregate only')
    .option('--fix', 'rebuild the rows found from their events, then verify them again')
    .action(action((run, aggregate: string, options: { id?: string; fix?: boolean }) => verify(run, aggregate, options)));
  program
    .command('rebuild')
    .description('replay events into the rows: one aggregate, or all of them in batches')
    .argument('<Aggregate>', 'the aggregate entity name')
    .option('--id <id>', 'rebuild this aggregate only')
    .action(action((run, aggregate: string, options: { id?: string }) => rebuild(run, aggregate, options)));
  program
    .command('baseline')
    .description('write the baseline event of every row that has no events yet')
    .argument('<Aggregate>', 'the aggregate entity name')
    .addOption(new Option('--batch-size <n>', 'rows per transaction (default 500)').argParser(positiveInteger))
    .action(action((run, aggregate: string, options: { batchSize?: number }) => baseline(run, aggregate, options)));
  program
    .command('trace')
    .description('the causation tree of a correlation id (<events table>/<id>): events and reactor jobs')
    .argument('<correlationId>', 'e.g. subscription_events/2')
    .action(action((run, correlationId: string) => trace(run, correlationId), { withReactors: true }));
  program
    .command('stats')
    .description('events per table and type, outbox backlog, queue jobs by state')
    .action(action((run) => stats(run), { withReactors: true }));
  program
    .command('schema:sql')
    .description("print the SQL of the library's sequence, outbox, identity table and triggers")
    .action(action((run) => schemaSql(run)));
  program
    .command('worker')
    .description('run the async reactors and an outbox relay until SIGTERM or SIGINT')
    .addOption(new Option('--concurrency <n>', 'jobs run at once (default 1)').argParser(positiveInteger))
    .action(action((run, options: { concurrency?: number }) => worker(run, options), { withReactors: true }));
  program
    .command('relay')
    .description('run an outbox relay until SIGTERM or SIGINT')
    .action(action((run) => relay(run), { withReactors: true }));

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for is a result; anything else commander reported in its one line.
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2;
    }
    context.streams.stderr.write(`${errorLine(error)}\n`);
    return 2;
  }
}
