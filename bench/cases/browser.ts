import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import type { BenchContext } from '../setup';
import { runGroup, type CaseResult } from '../harness';
import { Ledger } from '../models';

/** Far above the ids the replay group uses, so that the groups can run in any order. */
const LEDGER_ID = 1_000_000;
const EVENTS = 1000;

/**
 * The event browser's page of one aggregate of 1,000 events (row, verify, the newest 100 events
 * with their diffs and states: one replay of the whole history, plus verify's), fetched over
 * loopback, against one `stateAt` of the same aggregate at its last version. The ratio says what
 * the page costs in replays; a page that replayed once per event would be hundreds of times one.
 */
export async function browserCases(ctx: BenchContext): Promise<CaseResult[]> {
  await ctx.dataSource.query(`INSERT INTO ledger (id, total, version) VALUES ($1, 0, 0)`, [LEDGER_ID]);
  await ctx.dataSource.query(
    `INSERT INTO ledger_events (ledger_id, version, type, data, metadata, created_at)
     SELECT $1, v, CASE WHEN v = 1 THEN 'Ledger.Opened' ELSE 'Ledger.Credited' END,
       CASE WHEN v = 1 THEN jsonb_build_object('total', 3) ELSE jsonb_build_object('amount', v % 100) END, '{}'::jsonb, now()
     FROM generate_series(1, $2::int) v`,
    [LEDGER_ID, EVENTS],
  );
  await ctx.es.rebuild(Ledger, LEDGER_ID);
  await ctx.dataSource.query('ANALYZE ledger_events');
  const server = createServer(createEventBrowser(ctx.es));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/aggregates/Ledger/${LEDGER_ID}`;
  try {
    const [result] = await runGroup(
      'browser',
      {
        name: `es.stateAt(Ledger, id, { version: ${EVENTS} })`,
        op: async () => {
          if ((await ctx.es.stateAt(Ledger, LEDGER_ID, { version: EVENTS }))?.version !== EVENTS) throw new Error('stateAt did not reach the last version');
        },
      },
      [
        {
          name: `event browser: aggregate page of ${EVENTS} events (GET over loopback)`,
          op: async () => {
            const response = await fetch(url);
            const body = await response.text();
            if (response.status !== 200 || !body.includes(`the replay of its ${EVENTS} events`)) throw new Error(`the page answered ${response.status} without verifying`);
          },
        },
      ],
      { rounds: 7, slices: 1, sliceSize: 5, warmup: 3, metric: 'time' },
    );
    result.key = 'browser.aggregatePage';
    result.extra = { pageMs: Math.round((1000 / result.rate) * 10) / 10, stateAtMs: Math.round((1000 / result.baselineRate) * 10) / 10 };
    result.notes = `${result.extra.pageMs} ms per page, ${result.extra.stateAtMs} ms per stateAt`;
    return [result];
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
