import type { DataSource } from 'typeorm';
import type { Projections } from '../projections/projections';
import { outboxBacklog } from './health';
import type { GaugeReading, Instrumentation } from './instrumentation';

/**
 * One reading shared by the gauges collected together: a collection reads the backlog's count and
 * age (or every projection's lag) with one query, not one per gauge.
 */
function shared<T>(read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || performance.now() - last.at > 1000) last = { at: performance.now(), value: read() };
    return last.value;
  };
}

/**
 * Registers the gauges read from the database when metrics are collected: the outbox backlog and
 * the age of its oldest row, and each known projection's lag. Returns what stops reading them.
 */
export function observeGauges(instrumentation: Instrumentation, dataSource: DataSource, projections: Projections): () => void {
  const backlog = shared(() => outboxBacklog(dataSource));
  const lags = shared(async () => (await projections.status()).flatMap((status) => (status.lag ? [{ name: status.name, lag: status.lag }] : [])));
  const projectionReadings = (value: (lag: { events: number; seconds: number }) => number) => async (): Promise<GaugeReading[]> =>
    (await lags()).map(({ name, lag }) => ({ value: value(lag), attributes: { 'typeorm_es.projection': name } }));
  const stops = [
    instrumentation.observe('typeorm_es.outbox.backlog', async () => [{ value: (await backlog()).pending }]),
    instrumentation.observe('typeorm_es.outbox.oldest_age', async () => [{ value: ((await backlog()).oldestAgeMs ?? 0) / 1000 }]),
    instrumentation.observe('typeorm_es.projection.lag', projectionReadings((lag) => lag.seconds)),
    instrumentation.observe('typeorm_es.projection.lag_events', projectionReadings((lag) => lag.events)),
  ];
  return () => stops.forEach((stop) => stop());
}
