/**
 * What app.module.ts takes from issue 15 (the usage screen, ops console and breakdown): the
 * controllers (api role) and the breakdown read model provider.
 */
import type { Provider } from '@nestjs/common';
import type { EventStore } from '@metering/event-store';
import type { AppConfig } from '../config';
import type { BalanceReadModel } from '../projection/balance-read-model';
import { BREAKDOWN_READ_MODEL } from '../projection/breakdown/breakdown';
import { openBreakdownReadModel } from '../projection/breakdown/open-breakdown';
import { UiController } from './ui.controller';
import { UsageApiController } from './usage-api.controller';

export const UI_CONTROLLERS = [UiController, UsageApiController];

export function uiProviders(config: AppConfig, storage: { store: EventStore; readModel: BalanceReadModel }): Provider[] {
  return [{ provide: BREAKDOWN_READ_MODEL, useFactory: () => openBreakdownReadModel(config, storage) }];
}
