import type { KafkaMessage } from 'kafkajs';
import { decodeHeaders, isFatal, toConsumedMessage } from './batch-consumer';
import { filtered, kafkaJsLogCreator } from './logging';
import type { MessagingLogRecord } from '../port';
import { logLevel } from 'kafkajs';

describe('kafkajs message mapping', () => {
  it('decodes keys and headers as UTF-8, keeps value bytes, takes the last of repeated headers', () => {
    const message = {
      key: Buffer.from('space-é'),
      value: Buffer.from([0, 255]),
      headers: { a: Buffer.from('1'), b: [Buffer.from('first'), Buffer.from('last')], c: 'plain', d: undefined },
      offset: '42',
      timestamp: '1700000000000',
      attributes: 0,
      size: 0,
    } as unknown as KafkaMessage;
    expect(toConsumedMessage(message)).toEqual({
      key: 'space-é',
      value: Buffer.from([0, 255]),
      headers: { a: '1', b: 'last', c: 'plain' },
      offset: '42',
      timestamp: '1700000000000',
    });
  });

  it('maps a missing key to null and a tombstone to an empty buffer', () => {
    const message = { key: null, value: null, offset: '0', timestamp: '0', attributes: 0, size: 0 } as unknown as KafkaMessage;
    const consumed = toConsumedMessage(message);
    expect(consumed.key).toBeNull();
    expect(consumed.value.length).toBe(0);
    expect(decodeHeaders(undefined)).toEqual({});
  });
});

describe('kafkajs log routing', () => {
  it('sends kafkajs entries to the logger with level, namespace and fields, filtered by level', () => {
    const records: MessagingLogRecord[] = [];
    const log = kafkaJsLogCreator(filtered((r) => records.push(r), 'warn'))(logLevel.INFO);
    const entry = (level: logLevel, message: string) => ({
      namespace: 'Consumer',
      level,
      label: '',
      log: { timestamp: 'ts', logger: 'kafkajs', message, groupId: 'g' },
    });
    log(entry(logLevel.ERROR, 'boom'));
    log(entry(logLevel.WARN, 'hmm'));
    log(entry(logLevel.INFO, 'joined'));
    log(entry(logLevel.DEBUG, 'noise'));
    expect(records).toEqual([
      { level: 'error', message: 'boom', source: 'kafkajs.Consumer', fields: { groupId: 'g' } },
      { level: 'warn', message: 'hmm', source: 'kafkajs.Consumer', fields: { groupId: 'g' } },
    ]);
  });
});

describe('isFatal', () => {
  it('ends the consumer only on errors that need an operator, looking through causes', () => {
    expect(isFatal({ name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED' })).toBe(true);
    expect(isFatal({ name: 'KafkaJSNonRetriableError', cause: { name: 'KafkaJSSASLAuthenticationError' } })).toBe(true);
    expect(isFatal({ name: 'KafkaJSProtocolError', type: 'UNKNOWN_MEMBER_ID' })).toBe(false);
    expect(isFatal({ name: 'KafkaJSNonRetriableError', cause: { name: 'KafkaJSConnectionError' } })).toBe(false);
    expect(isFatal(new TypeError('bug'))).toBe(false);
    expect(isFatal(undefined)).toBe(false);
  });
});
