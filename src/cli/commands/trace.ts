import type { Queue } from 'bullmq';
import type { AggregateEvent } from '../../events/aggregate-event';
import { IDENTITY_TABLE, libraryObject, OUTBOX_TABLE } from '../../schema/event-sourcing-schema';
import { aggregatesOf } from '../aggregates';
import type { CommandRun } from '../command-run';
import { CliError } from '../errors';
import { cell, eventJson, type EventJson } from '../output';
import { JOB_STATES } from '../queue';

/** A reactor job of an event: in the queue (any state), or still in the outbox. */
interface TraceJob {
  id: string | null;
  reactor: string;
  state: string;
  attemptsMade: number;
  failedReason: string | null;
  finishedOn: string | null;
}

/** An event of the trace, with what caused it and the jobs it made. */
interface TraceEvent extends EventJson {
  /** `<events table>/<id>`, as causationId and correlationId name events. */
  ref: string;
  aggregate: string;
  causationId: string | null;
  /** `trigger` when written in its cause's transaction, `async` when by a job later. */
  via: 'trigger' | 'async' | null;
  jobs: TraceJob[];
}

/** Job ids scanned per request: memory stays bounded however many jobs the queue keeps. */
const PAGE = 1000;

/**
 * `trace <correlationId>`: every event of one causation chain, from every events table, as a
 * tree (`causationId` links an event to the one that caused it), with the reactor jobs of each.
 */
export async function trace(run: CommandRun, correlationId: string): Promise<number> {
  const queue = await run.reachQueue();
  const dataSource = run.es.dataSource;
  const named = /^(.+)\/(\d+)$/.exec(correlationId);
  const found: TraceEvent[] = [];
  for (const aggregate of aggregatesOf(dataSource)) {
    const tableName = aggregate.eventsMetadata.tableName;
    // A sequential scan of the metadata column; docs/cli.md shows the index that avoids it.
    const query = dataSource.manager
      .createQueryBuilder(aggregate.eventsMetadata.target, 'e')
      .where(`e.metadata ->> 'correlationId' = :correlationId`, { correlationId });
    if (named && named[1] === tableName) query.orWhere('e.id = :id', { id: named[2] });
    for (const event of (await query.getMany()) as AggregateEvent[]) {
      const json = eventJson(tableName, event);
      const causationId = typeof json.metadata.causationId === 'string' ? json.metadata.causationId : null;
      found.push({ ...json, ref: `${tableName}/${json.id}`, aggregate: aggregate.name, causationId, via: null, jobs: [] });
    }
  }
  if (found.length === 0) throw new CliError(`no event is ${correlationId}, and none carries it as its correlationId`);
  found.sort((a, b) => a.position - b.position);
  const byRef = new Map(found.map((event) => [event.ref, event]));
  for (const event of found) {
    const cause = event.causationId ? byRef.get(event.causationId) : undefined;
    if (cause) event.via = cause.txId === event.txId ? 'trigger' : 'async';
  }
  if (queue) await attachJobs(run, queue, found);
  // The event named may sit inside another chain: its descendants carry that chain's id.
  const root = named ? byRef.get(correlationId) : undefined;
  const rootCorrelation = typeof root?.metadata.correlationId === 'string' ? root.metadata.correlationId : undefined;
  const elsewhere = rootCorrelation && rootCorrelation !== correlationId ? rootCorrelation : undefined;
  if (run.json) {
    run.printJson({ correlationId, queue: queue?.name ?? null, events: found });
    return 0;
  }
  const jobs = found.reduce((sum, event) => sum + event.jobs.length, 0);
  run.print(`correlation ${correlationId}: ${found.length} event${found.length === 1 ? '' : 's'}${queue ? `, ${jobs} job${jobs === 1 ? '' : 's'}` : ' (no queue configured: jobs not shown)'}`);
  const children = (ref: string | null) => found.filter((event) => (ref === null ? !event.causationId || !byRef.has(event.causationId) : event.causationId === ref));
  const print = (event: TraceEvent, prefix: string, branch: string) => {
    const via = event.via ? `  (${event.via})` : '';
    run.print(`${prefix}${branch}${event.ref}  ${event.type}  ${event.aggregate} ${cell(event.aggregateId)} v${event.version}  ${event.createdAt}${via}`);
    const inner = prefix + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ');
    const lines: Array<{ job: TraceJob } | { event: TraceEvent }> = [...event.jobs.map((job) => ({ job })), ...children(event.ref).map((child) => ({ event: child }))];
    lines.forEach((line, index) => {
      const last = index === lines.length - 1;
      if ('job' in line) run.print(`${inner}${last ? '└─ ' : '├─ '}${jobLine(line.job)}`);
      else print(line.event, inner, last ? '└─ ' : '├─ ');
    });
  };
  for (const root of children(null)) print(root, '', '');
  if (elsewhere) run.print(`note: ${correlationId} belongs to the chain ${elsewhere}; typeorm-es trace ${elsewhere} shows all of it`);
  return 0;
}

function jobLine(job: TraceJob): string {
  const attempts = job.attemptsMade > 0 ? `, ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}` : '';
  const reason = job.failedReason ? `: ${job.failedReason.replace(/\s*\n\s*/g, ' ')}` : '';
  return `job ${job.reactor}  ${job.state}${attempts}${reason}`;
}

/**
 * The jobs of the traced events. Job ids are `<database identity>.<event position>.<reactor>.<key>`
 * with a random key, so they are found by their prefix among the ids the queue holds, a page at
 * a time, then loaded one by one; rows still in the outbox are jobs not in the queue yet.
 */
async function attachJobs(run: CommandRun, queue: Queue, events: TraceEvent[]): Promise<void> {
  const dataSource = run.es.dataSource;
  const driver = dataSource.driver;
  const [{ identity }]: { identity: string }[] = await dataSource.query(`SELECT id::text AS identity FROM ${libraryObject(driver, IDENTITY_TABLE)}`);
  const byPosition = new Map(events.map((event) => [String(event.position), event]));
  const prefix = `${identity}.`;
  const seen = new Set<string>();
  for (const state of JOB_STATES) {
    for (let start = 0; ; start += PAGE) {
      const ids = await queue.getRanges([state], start, start + PAGE - 1, true);
      for (const id of ids) {
        if (!id.startsWith(prefix) || seen.has(id)) continue;
        const position = id.slice(prefix.length, id.indexOf('.', prefix.length));
        const event = byPosition.get(position);
        if (!event) continue;
        seen.add(id);
        const job = await queue.getJob(id);
        if (!job) continue;
        event.jobs.push({
          id,
          reactor: job.name,
          state,
          attemptsMade: job.attemptsMade,
          failedReason: job.failedReason || null,
          finishedOn: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
        });
      }
      if (ids.length < PAGE) break;
    }
  }
  const waiting: { position: number; reactor: string }[] = await dataSource.query(
    `SELECT event_position::float8 AS position, reactor FROM ${libraryObject(driver, OUTBOX_TABLE)} WHERE enqueued_at IS NULL AND event_position = ANY($1::bigint[]) ORDER BY id`,
    [events.map((event) => event.position)],
  );
  for (const row of waiting) {
    byPosition.get(String(row.position))?.jobs.push({ id: null, reactor: row.reactor, state: 'outbox', attemptsMade: 0, failedReason: null, finishedOn: null });
  }
  for (const event of events) event.jobs.sort((a, b) => a.reactor.localeCompare(b.reactor));
}
