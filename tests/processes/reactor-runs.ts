import { Dispatcher, type ReactorContext } from '../../src';
import { OrderEvent, reactorNames, RUNS_TABLE } from './model';

/**
 * How reactors of the reliability tests leave their trace: one reactor_runs row per run and
 * phase. Shared by the child processes and by tests that attach in the jest process itself.
 */

export async function recordRun(event: OrderEvent, context: ReactorContext, phase: 'started' | 'done'): Promise<void> {
  await context.manager.query(`INSERT INTO ${RUNS_TABLE} (event_id, reactor, phase, pid, attempt, job_id) VALUES ($1, $2, $3, $4, $5, $6)`, [
    event.id,
    context.reactor,
    phase,
    process.pid,
    context.attempt,
    context.job?.id ?? null,
  ]);
}

/** A dispatcher with every async reactor of `reactorNames` on every order event, each recording one 'done' run. */
export function recordingDispatcher(): Dispatcher {
  const dispatcher = new Dispatcher();
  for (const name of reactorNames) dispatcher.on(OrderEvent, { async: (event: OrderEvent, context: ReactorContext) => recordRun(event, context, 'done'), name });
  return dispatcher;
}
