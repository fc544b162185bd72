import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<string>();

/** Runs a trigger reactor so that errors raised by writes it makes can name it. */
export function inTrigger<T>(reactor: string, fn: () => T): T {
  return scope.run(reactor, fn);
}

/** The trigger reactor running in this async context, if any. */
export function currentTrigger(): string | undefined {
  return scope.getStore();
}
