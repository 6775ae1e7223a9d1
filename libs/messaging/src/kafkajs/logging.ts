import { logLevel as KafkaJsLogLevel, type logCreator } from 'kafkajs';
import type { MessagingLogLevel, MessagingLogger } from '../port';

export type MinimumLogLevel = MessagingLogLevel | 'silent';

const RANK: Record<MinimumLogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

/** kafkajs' level for a minimum level of ours. */
export function toKafkaJsLevel(level: MinimumLogLevel): KafkaJsLogLevel {
  switch (level) {
    case 'silent':
      return KafkaJsLogLevel.NOTHING;
    case 'error':
      return KafkaJsLogLevel.ERROR;
    case 'warn':
      return KafkaJsLogLevel.WARN;
    case 'info':
      return KafkaJsLogLevel.INFO;
    case 'debug':
      return KafkaJsLogLevel.DEBUG;
  }
}

function fromKafkaJsLevel(level: KafkaJsLogLevel): MessagingLogLevel {
  if (level <= KafkaJsLogLevel.ERROR) return 'error';
  if (level === KafkaJsLogLevel.WARN) return 'warn';
  if (level === KafkaJsLogLevel.INFO) return 'info';
  return 'debug';
}

/** Drops records below `minimum` before they reach `logger`. */
export function filtered(logger: MessagingLogger, minimum: MinimumLogLevel): MessagingLogger {
  const max = RANK[minimum];
  return (record) => {
    if (RANK[record.level] <= max) logger(record);
  };
}

/** The default when no logger is given: errors only, one JSON line each on stderr. */
export const stderrErrorLogger: MessagingLogger = (record) => {
  if (record.level !== 'error') return;
  const { level, message, source, fields } = record;
  process.stderr.write(`${JSON.stringify({ level, source, message, ...fields }, errorReplacer)}\n`);
};

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

/** Routes kafkajs' own log lines (never the console) to `logger`. */
export function kafkaJsLogCreator(logger: MessagingLogger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = log;
      logger({
        level: fromKafkaJsLevel(level),
        message: String(message),
        source: namespace ? `kafkajs.${namespace}` : 'kafkajs',
        fields,
      });
    };
}
