/**
 * The HTTP API: health and metrics always; the /v1 routes when this instance has the api role; the
 * API-key guard for every route. The ports it talks to (the ingress, the health ports) come from
 * the modules the composition root passes in, so this folder never imports the Kafka folder.
 */
import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import type { AppConfig } from '../config';
import { IngestModule } from '../ingest/ingest.module';
import { ProjectionModule } from '../projection/projection.module';
import { ApiKeyGuard } from '../security/api-keys';
import { HealthController } from './health.controller';
import { SpacesController } from './spaces.controller';

@Module({})
export class HttpModule {
  /** `ports`: modules that export EVENT_INGRESS, KAFKA_STATS and KAFKA_PROBE. */
  static forRoot(config: AppConfig, ports: Type[]): DynamicModule {
    const api = config.roles.has('api');
    return {
      module: HttpModule,
      imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), IngestModule, ProjectionModule, ...ports],
      controllers: [HealthController, ...(api ? [SpacesController] : [])],
      providers: [{ provide: APP_GUARD, useFactory: () => new ApiKeyGuard(config.apiKeys) }],
    };
  }
}
