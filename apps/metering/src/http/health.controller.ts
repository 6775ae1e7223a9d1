import { Controller, Get, HttpStatus, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, type HealthCheckResult, HealthIndicatorService } from '@nestjs/terminus';
import { EVENT_STORE, type EventStore } from '@metering/event-store';
import { type AppConfig } from '../config';
import { Projector } from '../projection/projector';
import { type BalanceQueries } from '../projection/balance-read-model';
import { KAFKA_PROBE, KAFKA_STATS, type KafkaProbe } from '../observability/health-ports';
import { type Metrics } from '../observability/metrics';
import { APP_CONFIG, METRICS } from '../core/tokens';
import { BALANCE_READ_MODEL } from '../projection/tokens';


type Reply = { status(code: number): unknown; header(name: string, value: string): unknown };

/** Liveness, readiness (store, and Kafka when configured) and Prometheus metrics: never behind an API key. */
@ApiTags('operations')
@Controller()
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(Projector) private readonly projector: Projector,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(BALANCE_READ_MODEL) private readonly readModel: BalanceQueries,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(KAFKA_STATS) private readonly kafkaStats: Record<string, number> | null,
    @Inject(KAFKA_PROBE) private readonly kafkaProbe: KafkaProbe | null,
    @Inject(METRICS) private readonly metrics: Metrics,
  ) {}

  @Get('health/live')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiOkResponse({ schema: { example: { status: 'ok' } } })
  live() {
    return { status: 'ok' };
  }

  @Get('health/ready')
  @ApiOperation({ summary: 'Readiness: the event store answers (and Kafka, when configured); 503 otherwise' })
  @ApiOkResponse({ description: 'ready: terminus result plus the projection checkpoint, the store head and Kafka counters' })
  @ApiServiceUnavailableResponse({ description: 'a dependency is down: `error` names it and why' })
  async ready(@Res({ passthrough: true }) res: Reply) {
    let head: bigint | null = null;
    const checks = [
      () =>
        this.indicators
          .check('store')
          .attempt(async () => {
            head = await this.store.headPosition();
            return { kind: this.config.eventStore, head: head.toString() };
          })
          .withTimeout(3000),
      ...(this.kafkaProbe
        ? [
            () =>
              this.indicators
                .check('kafka')
                .attempt(() => (this.kafkaProbe as KafkaProbe)())
                .withTimeout(5000)
                .cacheFor(5000),
          ]
        : []),
    ];
    let result: HealthCheckResult;
    let ok = true;
    try {
      result = await this.health.check(checks);
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      result = err.getResponse() as HealthCheckResult;
      ok = false;
    }
    const checkpoint = this.config.roles.has('projector') ? this.projector.checkpoint : await this.readModel.checkpoint().catch(() => null);
    res.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return {
      ...result,
      store: result.info?.store ? 'up' : 'down',
      projectionCheckpoint: checkpoint === null ? null : checkpoint.toString(),
      storeHead: head === null ? null : (head as bigint).toString(),
      roles: [...this.config.roles],
      ...(this.kafkaStats ? { kafka: this.kafkaStats } : {}),
    };
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiProduces('text/plain')
  async prometheus(@Res({ passthrough: true }) res: Reply) {
    res.header('content-type', this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }
}
