import { Controller, Get, Inject, Param, Query } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiQuery, ApiTags } from '@nestjs/swagger';
import { Scoped } from '../security/scoped';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { CatalogService } from '../catalog/catalog.service';
import { checkInstantRange, checkSpaceId, invalid } from '../http/api-errors';
import { type Clock } from '../infra/clock';
import { type BalanceQueries, type BalanceProjection } from '../projection/balance-read-model';
import { parseInstantInput } from '@metering/domain';
import { auditSpace, balanceAt } from './audit';
import { CLOCK } from '../core/tokens';
import { BALANCE_READ_MODEL } from '../projection/tokens';

/** Ops endpoints: the same audit and point-in-time balance as the `metering` CLI. Read-only. */
@ApiTags('admin')
@Scoped('admin')
@Controller('v1/admin')
export class AdminController {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceQueries & Pick<BalanceProjection, 'dump'>,
    @Inject(CatalogService) private readonly catalog: CatalogService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  private instant(name: string, raw: string | undefined, required: boolean): number | undefined {
    if (raw === undefined || raw === '') {
      if (required) throw invalid([{ field: name, rule: 'required', message: `${name} is required (ISO-8601 instant or epoch ms)` }], 400);
      return undefined;
    }
    const t = typeof raw === 'string' && raw.length <= 40 ? parseInstantInput(raw) : Number.NaN;
    if (Number.isNaN(t)) throw invalid([{ field: name, rule: 'iso_instant', message: `${name} must be an ISO-8601 instant or epoch ms` }], 400);
    return checkInstantRange(name, t);
  }

  /** Replays the Space's stream and compares it with the read model; `consistent` false lists every difference. */
  @Get('spaces/:spaceId/audit')
  @ApiOperation({ summary: "Replays the Space's stream and lists every difference from the read model" })
  @ApiParam({ name: 'spaceId' })
  @ApiQuery({ name: 'from', required: false, description: 'ISO-8601 instant or epoch ms' })
  @ApiQuery({ name: 'to', required: false, description: 'ISO-8601 instant or epoch ms' })
  async audit(@Param('spaceId') spaceId: string, @Query('from') from?: string, @Query('to') to?: string) {
    checkSpaceId(spaceId);
    await this.catalog.refresh();
    return auditSpace(this.store, this.readModel, this.catalog.catalog, spaceId, {
      from: this.instant('from', from, false),
      to: this.instant('to', to, false),
      now: this.clock.now(),
    });
  }

  /** The usage view as of `at`, folded from the stream (usage at occurredAt, subscriptions at effectiveAt). */
  @Get('spaces/:spaceId/balance')
  @ApiOperation({ summary: 'The usage view as of `at`, folded from the stream' })
  @ApiParam({ name: 'spaceId' })
  @ApiQuery({ name: 'at', required: true, description: 'ISO-8601 instant or epoch ms' })
  async balance(@Param('spaceId') spaceId: string, @Query('at') at?: string) {
    checkSpaceId(spaceId);
    const t = this.instant('at', at, true) as number;
    await this.catalog.refresh();
    const b = await balanceAt(this.store, this.catalog.catalog, spaceId, t);
    return { ...b.view, eventsIncluded: b.eventsIncluded, eventsExcluded: b.eventsExcluded };
  }
}
