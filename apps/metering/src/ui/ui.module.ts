/** The usage screen, the ops console and their JSON routes (api role); the breakdown comes from the projection. */
import { type DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '../config';
import { ProjectionModule } from '../projection/projection.module';
import { UiController } from './ui.controller';
import { UsageApiController } from './usage-api.controller';

@Module({})
export class UiModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: UiModule, imports: [ProjectionModule], controllers: config.roles.has('api') ? [UiController, UsageApiController] : [] };
  }
}
