// Types for broker.js (plain CommonJS so node, jest's global setup and CI load it unbuilt).

export interface StartBrokerOptions {
  /** Apache Kafka version for the JVM and Docker modes. Default: $KAFKA_VERSION, else DEFAULT_KAFKA_VERSION. */
  version?: string;
  /** Use these bootstrap servers and start nothing (as KAFKA_BROKERS does). */
  brokers?: string;
  /** Start a broker of our own even when KAFKA_BROKERS is set (e.g. a test that restarts it). */
  fresh?: boolean;
  /** auto | docker | jvm. Default: $KAFKA_HARNESS_MODE, else auto (Docker when an engine answers). */
  mode?: 'auto' | 'docker' | 'jvm';
  /** Broker default `num.partitions`. Default: $KAFKA_NUM_PARTITIONS, else 4. */
  partitions?: number;
  /** JVM max heap, e.g. '384m'. Default: $KAFKA_HEAP, else 384m. */
  heap?: string;
  /** Extra JVM arguments. Default: $KAFKA_JVM_OPTS split on spaces. */
  jvmArgs?: string[];
  /** Broker log level in its log file (INFO, WARN...). Default: $KAFKA_LOG_LEVEL, else INFO. */
  logLevel?: string;
  /** Give up start-up after this long. Default: $KAFKA_START_TIMEOUT_MS, else 90 s. */
  startTimeoutMs?: number;
  /** SIGTERM grace period before SIGKILL. Default 15 s. */
  stopTimeoutMs?: number;
  /** Fixed [broker, controller] ports instead of free ones picked at run time. */
  ports?: [number, number];
  /** Keep the temp dir (data and logs) after stop(); also $KAFKA_KEEP_DIR. */
  keepDir?: boolean;
  /** Progress messages of the harness (default: none). */
  log?: (message: string) => void;
  /** Called when the broker process dies without stop()/restart() asking it to. */
  onUnexpectedExit?: (info: { code: number | null; signal: string | null }) => void;
}

export interface KafkaBroker {
  /** How it was provided: an existing broker, a container, or a JVM of ours. */
  readonly mode: 'external' | 'docker' | 'jvm';
  /** Apache Kafka version ('external' when KAFKA_BROKERS was used). */
  readonly version: string;
  /** Bootstrap servers, `host:port[,host:port]`. Stable across restart(). */
  readonly brokers: string;
  /** Milliseconds from the call to a successful metadata request. */
  readonly startupMs: number;
  /** JVM mode: pid of the broker process. */
  readonly pid?: number;
  /** JVM mode: the temp dir holding data, config and logs (removed by stop()). */
  readonly dir?: string;
  /** JVM mode: the broker's log file. */
  readonly logFile?: string;
  /** SIGTERM, then SIGKILL after the grace period; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the broker and starts it again on the same ports with the same data; resolves once it
   * answers metadata requests again. `hard: true` kills it with SIGKILL first (crash).
   */
  restart(opts?: { hard?: boolean }): Promise<void>;
}

export declare const DEFAULT_KAFKA_VERSION: string;

export declare class KafkaHarnessError extends Error {
  constructor(message: string);
}

export declare function startBroker(opts?: StartBrokerOptions): Promise<KafkaBroker>;

/** Resolves the broker jars of `version` into the cache (Maven) unless there; returns the libs dir. */
export declare function ensureKafkaLibs(opts?: { version?: string; log?: (message: string) => void }): string;

/** Kills brokers and removes temp dirs left by harness runs whose process is gone; returns how many. */
export declare function reapStale(log?: (message: string) => void): number;

export declare function libsDirFor(version: string): string;
export declare function runRoot(): string;
export declare function dockerImageFor(version: string): string;
