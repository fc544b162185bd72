// #region imports
import { BadRequestException, Body, Controller, Get, Headers, HttpCode, NotFoundException, Param, Post, UseFilters } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { EventSourcing, type CommandAttributes } from 'typeorm-event-sourcing';
import { InjectEventSourcing } from 'typeorm-event-sourcing/nestjs';
import { ActivateSubscription, CancelSubscription, CreateSubscription } from '../subscriptions/commands';
import { Subscription } from '../subscriptions/model';
import { EventSourcingErrorsFilter } from './event-sourcing-errors.filter';
// #endregion imports

/**
 * A request body as a command's attributes. Only its shape is checked here: the command refuses
 * unknown attributes and values its rules reject (a ValidationError, 400).
 */
function attributes<C extends object>(body: unknown): CommandAttributes<C> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestException('the body must be a JSON object');
  return body as CommandAttributes<C>;
}

/** `If-Match: <version>` makes a write conditional on the version the client saw. */
function expectedVersion(ifMatch: string | undefined): number | undefined {
  if (ifMatch === undefined) return undefined;
  if (!/^\d{1,9}$/.test(ifMatch)) throw new BadRequestException('If-Match must be a version number');
  return Number(ifMatch);
}

// #region controller
@Controller('subscriptions')
@UseFilters(EventSourcingErrorsFilter)
export class SubscriptionsController {
  constructor(
    @InjectRepository(Subscription) private readonly subscriptions: Repository<Subscription>,
    @InjectEventSourcing() private readonly es: EventSourcing,
  ) {}

  @Post()
  async create(@Body() body: unknown) {
    const created = await CreateSubscription.call(attributes<CreateSubscription>(body));
    return this.find(String(created!.aggregateId));
  }

  @Post(':id/activate')
  @HttpCode(200)
  async activate(@Param('id') id: string, @Body() body: unknown, @Headers('if-match') ifMatch?: string) {
    // The aggregate comes from the URL and is given last: a body cannot name another one.
    const subscription = await this.find(id);
    await ActivateSubscription.call({ ...attributes<ActivateSubscription>(body), subscription }, { expectedVersion: expectedVersion(ifMatch) });
    return subscription;
  }

  @Post(':id/cancel')
  @HttpCode(200)
  async cancel(@Param('id') id: string, @Body() body: unknown, @Headers('if-match') ifMatch?: string) {
    const subscription = await this.find(id);
    await CancelSubscription.call({ ...attributes<CancelSubscription>(body), subscription }, { expectedVersion: expectedVersion(ifMatch) });
    return subscription;
  }

  @Get(':id')
  async show(@Param('id') id: string) {
    const subscription = await this.find(id);
    const history = await this.es.history(Subscription, subscription.id);
    return {
      subscription,
      history: history.map((event) => ({ version: event.version, type: event.type, data: event.data, metadata: event.metadata, createdAt: event.createdAt })),
    };
  }

  /** The row, or 404 for an id that is not one (the column is a 32-bit integer). */
  private async find(id: string): Promise<Subscription> {
    const key = /^\d{1,10}$/.test(id) ? Number(id) : NaN;
    const subscription = key > 0 && key <= 2 ** 31 - 1 ? await this.subscriptions.findOneBy({ id: key }) : null;
    if (!subscription) throw new NotFoundException(`Subscription ${id} does not exist`);
    return subscription;
  }
}
// #endregion controller
