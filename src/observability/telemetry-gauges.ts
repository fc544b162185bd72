import type { DataSource } from 'typeorm';
import type { Projections } from '../projections/projections';
import { outboxBacklog } from './health';
import type { GaugeReading, Instrumentation } from './instrumentation';

/**
 * Registers the gauges read from the database when metrics are collected: the outbox backlog and
 * the age of its oldest row, and each known projection's lag. Returns what stops reading them.
 */
export function observeGauges(instrumentation: Instrumentation, dataSource: DataSource, projections: Projections): () => void {
  const stops = [
    instrumentation.observe(['typeorm_es.outbox.backlog', 'typeorm_es.outbox.oldest_age'], async (): Promise<GaugeReading[]> => {
      const { pending, oldestAgeMs } = await outboxBacklog(dataSource);
      return [
        { metric: 'typeorm_es.outbox.backlog', value: pending },
        { metric: 'typeorm_es.outbox.oldest_age', value: (oldestAgeMs ?? 0) / 1000 },
      ];
    }),
    instrumentation.observe(['typeorm_es.projection.lag', 'typeorm_es.projection.lag_events'], async (): Promise<GaugeReading[]> =>
      (await projections.status()).flatMap(({ name, lag }) => {
        if (!lag) return [];
        const attributes = { 'typeorm_es.projection': name };
        return [
          { metric: 'typeorm_es.projection.lag', value: lag.seconds, attributes },
          { metric: 'typeorm_es.projection.lag_events', value: lag.events, attributes },
        ];
      }),
    ),
  ];
  return () => stops.forEach((stop) => stop());
}
