#!/usr/bin/env node
import { CliError, errorLine, isConnectionError } from './errors';
import { loadProject, type LoadedProject } from './load-data-source';
import { runProgram } from './program';

/**
 * The `typeorm-es` executable: loads the `-d` DataSource once a command runs (never for `--help`
 * or a mistake on the command line), runs the command code runCli runs, closes the instance and
 * the DataSource, and exits with the command's code.
 */
async function main(): Promise<void> {
  let project: LoadedProject | undefined;
  let starting = true;
  let trouble: string | undefined;
  let lastLine: string | undefined;
  const onError = (error: unknown) => {
    const line = errorLine(error);
    // Redis out of reach while starting: the command reports it in its own single line.
    if (starting && isConnectionError(error)) {
      trouble = line.replace(/^error: /, '');
      return;
    }
    // A server out of reach repeats its error on every reconnect attempt.
    if (line === lastLine) return;
    lastLine = line;
    process.stderr.write(`${line}\n`);
  };
  let code = await runProgram(
    {
      streams: { stdout: process.stdout, stderr: process.stderr },
      dataSourceOption: true,
      async eventSourcing(file, withReactors) {
        if (!file) throw new CliError('option -d, --data-source <file> is required: the module exporting your DataSource');
        project = await loadProject(file, process.cwd(), { withReactors, onError });
        return project.es;
      },
      connectionTrouble: () => trouble,
      started: () => {
        starting = false;
      },
    },
    process.argv.slice(2),
  );
  if (project) {
    try {
      await project.close();
    } catch (error) {
      process.stderr.write(`${errorLine(error)}\n`);
      if (code === 0) code = 2;
    }
  }
  // Exit rather than wait for the event loop: a timer or pool the user's module opened must not
  // keep the CLI alive. Output written to pipes is flushed first.
  await new Promise((resolve) => process.stdout.write('', resolve));
  process.exit(code);
}

main().catch((error: unknown) => {
  process.stderr.write(`${errorLine(error)}\n`);
  process.exit(2);
});
