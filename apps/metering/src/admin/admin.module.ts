/** Admin routes (api role): Space streams for audits, catalog publishing, re-drives. */
import { type DynamicModule, Module } from '@nestjs/common';
import type { AppConfig } from '../config';
import { AdminController } from './admin.controller';

@Module({})
export class AdminModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: AdminModule, controllers: config.roles.has('api') ? [AdminController] : [] };
  }
}
