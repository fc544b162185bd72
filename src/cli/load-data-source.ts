import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DataSource } from 'typeorm';
import type { EventSourcing, EventSourcingOptions } from '../event-sourcing';
import { CliError, errorLine, isConnectionError, maskCredentials } from './errors';

/** A DataSource loaded from `-d`, initialised and attached, and how to close both. */
export interface LoadedProject {
  readonly dataSource: DataSource;
  readonly es: EventSourcing;
  /** es.close(), then dataSource.destroy(); both run even if the first fails. */
  close(): Promise<void>;
}

type Require = NodeJS.Require;

const typeScript = /\.[cm]?ts$/;

/** Where a DataSource points, credentials masked: for error lines about reaching it. */
export function describeDatabase(dataSource: DataSource): string {
  const options = dataSource.options as { url?: string; host?: string; port?: number; database?: string };
  if (options.url) return maskCredentials(options.url);
  return `${options.host ?? 'localhost'}:${options.port ?? 5432}${options.database ? `/${options.database}` : ''}`;
}

/**
 * ts-node as the user's project resolves it, registered once. tsx and esbuild-based loaders are
 * no substitute: they drop the decorator metadata (`design:type`) that TypeORM and this library
 * read.
 */
function registerTsNode(file: string, projectRequire: Require, shown: string): void {
  if (require.extensions['.ts']) return; // run under ts-node already (node -r ts-node/register)
  let tsNode: string;
  try {
    tsNode = projectRequire.resolve('ts-node');
  } catch {
    throw new CliError(
      `${shown} is TypeScript: install ts-node (npm install --save-dev ts-node) to load it, or pass the compiled .js file (tsx and esbuild drop the decorator metadata TypeORM needs)`,
    );
  }
  const { register } = projectRequire(tsNode) as { register(options: Record<string, unknown>): unknown };
  // Type-checking is the build's job; the user's tsconfig (decorator settings included) applies.
  register({ projectSearchDir: path.dirname(file), transpileOnly: true });
}

/** The module, through require (CommonJS, and ES modules Node can require), or import() for the rest. */
async function loadModule(file: string, projectRequire: Require): Promise<unknown> {
  // `Function` keeps the import() an import() after compilation to CommonJS.
  const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;
  if (file.endsWith('.mjs') || file.endsWith('.mts')) return importModule(pathToFileURL(file).href);
  try {
    return projectRequire(file);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') return importModule(pathToFileURL(file).href);
    throw error;
  }
}

/**
 * The DataSource of a module as TypeORM's CLI finds it: the module itself, or its only export
 * that is one or resolves to one (a Promise of a DataSource counts). An export seen twice (named
 * and default) is one DataSource.
 */
async function findDataSource(exports: unknown, isDataSource: (value: unknown) => boolean, shown: string): Promise<DataSource> {
  if (isDataSource(exports)) return exports as DataSource;
  const found = new Map<DataSource, string[]>();
  if (exports && typeof exports === 'object') {
    for (const key of Object.keys(exports)) {
      const value = await (exports as Record<string, unknown>)[key];
      if (isDataSource(value)) found.set(value as DataSource, [...(found.get(value as DataSource) ?? []), key]);
    }
  }
  if (found.size === 0) throw new CliError(`${shown} exports no DataSource: export one (export const dataSource = new DataSource({ ... }))`);
  if (found.size > 1) {
    const names = [...found.values()].map((keys) => keys.join('/')).join(', ');
    throw new CliError(`${shown} exports ${found.size} DataSources (${names}): export exactly one`);
  }
  return [...found.keys()][0];
}

/**
 * Loads the `-d` module as TypeORM's CLI does, with `typeorm` and this library resolved from the
 * module's own directory: the user's entity classes, their `typeorm` and their copy of this
 * library are the module instances the commands then use, whichever copy the bin belongs to.
 * Initialises with synchronize, migrationsRun and dropSchema off (and TypeORM's query logging off:
 * stdout is for results) and attaches with `createSchema: false`.
 */
export async function loadProject(
  fileArgument: string,
  cwd: string,
  options: {
    /**
     * Attach with the module's dispatcher and queue. Without them (commands that run no reactor
     * and read no queue) nothing connects to Redis, so those commands work while it is away, and
     * `schema:sql` works before the es_identity table a queue needs exists.
     */
    withReactors: boolean;
    /** Errors nobody awaits (a worker's, Redis reconnecting), unless the module's options have their own onError. */
    onError: (error: unknown) => void;
  },
): Promise<LoadedProject> {
  const file = path.resolve(cwd, fileArgument);
  if (!existsSync(file)) throw new CliError(`cannot find the DataSource file ${fileArgument} (${file})`);
  const projectRequire = createRequire(file);
  if (typeScript.test(file)) registerTsNode(file, projectRequire, fileArgument);
  let exports: unknown;
  try {
    exports = await loadModule(file, projectRequire);
  } catch (error) {
    throw new CliError(`cannot load ${fileArgument}: ${errorLine(error).replace(/^error: /, '')}`, { cause: error });
  }
  const typeorm = resolveFrom(projectRequire, 'typeorm', fileArgument) as typeof import('typeorm');
  const dataSource = await findDataSource(exports, (value) => typeorm.InstanceChecker.isDataSource(value), fileArgument);
  const attachOptions = (await (exports as { eventSourcing?: unknown } | null)?.eventSourcing) ?? {};
  if (typeof attachOptions !== 'object' || attachOptions === null) {
    throw new CliError(`the eventSourcing export of ${fileArgument} must be the options of EventSourcing.attach (an object), got ${typeof attachOptions}`);
  }
  const library = resolveLibrary(projectRequire);
  if (!dataSource.isInitialized) {
    dataSource.setOptions({ synchronize: false, migrationsRun: false, dropSchema: false, logging: false });
    try {
      await dataSource.initialize();
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      throw new CliError(`cannot reach the database ${describeDatabase(dataSource)}: ${errorLine(error).replace(/^error: /, '')}`, { cause: error });
    }
  }
  let es: EventSourcing;
  try {
    const given = attachOptions as EventSourcingOptions;
    es = await library.EventSourcing.attach(dataSource, {
      ...(options.withReactors ? given : {}),
      onError: given.onError ?? options.onError,
      createSchema: false,
    });
  } catch (error) {
    await dataSource.destroy().catch(() => undefined);
    // The database answered a moment ago: what attach could not reach is the queue's server.
    if (isConnectionError(error)) throw new CliError(`cannot reach the reactor queue's server: ${errorLine(error).replace(/^error: /, '')}`, { cause: error });
    throw error;
  }
  return {
    dataSource,
    es,
    async close() {
      try {
        await es.close();
      } finally {
        if (dataSource.isInitialized) await dataSource.destroy();
      }
    },
  };
}

function resolveFrom(projectRequire: Require, name: string, shown: string): unknown {
  let resolved: string;
  try {
    resolved = projectRequire.resolve(name);
  } catch {
    throw new CliError(`cannot find ${name} from ${shown}: install it in the project the DataSource belongs to`);
  }
  return projectRequire(resolved);
}

/**
 * This library as the user's project resolves it; this copy when the project has none (the
 * DataSource's entities then use no copy of their own either).
 */
function resolveLibrary(projectRequire: Require): { EventSourcing: typeof EventSourcing } {
  try {
    return projectRequire(projectRequire.resolve('typeorm-event-sourcing')) as { EventSourcing: typeof EventSourcing };
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../event-sourcing') as { EventSourcing: typeof EventSourcing };
  }
}
