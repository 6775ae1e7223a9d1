import { kafkaConfigFromEnv, MessagingConfigError, parseBrokers } from './config';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof MessagingConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a MessagingConfigError');
};

describe('kafkaConfigFromEnv', () => {
  it('reads brokers and client id, with nothing else switched on', () => {
    expect(kafkaConfigFromEnv({ KAFKA_BROKERS: ' kafka-1:9092, kafka-2:9093 ,' }, { defaultClientId: 'metering-ingest' })).toEqual({
      clientId: 'metering-ingest',
      brokers: ['kafka-1:9092', 'kafka-2:9093'],
    });
    expect(kafkaConfigFromEnv({ KAFKA_BROKERS: '[::1]:9092', KAFKA_CLIENT_ID: 'x.y_z-1' }).clientId).toBe('x.y_z-1');
  });

  it('turns on TLS and SASL/SCRAM from the environment', () => {
    const files: Record<string, string> = { '/ca.pem': 'CA', '/cert.pem': 'CERT', '/key.pem': 'KEY' };
    const config = kafkaConfigFromEnv(
      {
        KAFKA_BROKERS: 'k:9094',
        KAFKA_SSL_CA_FILE: '/ca.pem',
        KAFKA_SSL_CERT_FILE: '/cert.pem',
        KAFKA_SSL_KEY_FILE: '/key.pem',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'metering',
        KAFKA_SASL_PASSWORD: 's3cret ',
        KAFKA_REQUEST_TIMEOUT_MS: '10000',
      },
      { readFile: (p) => files[p] },
    );
    expect(config).toEqual({
      clientId: 'metering',
      brokers: ['k:9094'],
      ssl: { ca: 'CA', cert: 'CERT', key: 'KEY' },
      sasl: { mechanism: 'scram-sha-512', username: 'metering', password: 's3cret ' },
      requestTimeoutMs: 10000,
    });
    expect(kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:9094', KAFKA_SSL: 'true' }).ssl).toBe(true);
    expect(kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:9094', KAFKA_SSL: 'false' }).ssl).toBeUndefined();
    expect(
      kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:9094', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).sasl,
    ).toEqual({ mechanism: 'plain', username: 'u', password: 'p' });
  });

  it('reports every problem at once, naming the variable', () => {
    const problems = problemsOf(() =>
      kafkaConfigFromEnv(
        {
          KAFKA_BROKERS: 'kafka-1,kafka-2:99999',
          KAFKA_SSL: 'maybe',
          KAFKA_SSL_CERT_FILE: '/cert.pem',
          KAFKA_SASL_MECHANISM: 'gssapi',
          KAFKA_CONNECTION_TIMEOUT_MS: '5s',
        },
        {
          readFile: () => {
            throw new Error('ENOENT');
          },
        },
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'KAFKA_BROKERS: "kafka-1" is not host:port',
        'KAFKA_BROKERS: "kafka-2:99999" is not host:port',
        'KAFKA_SSL="maybe": must be true or false',
        expect.stringContaining('KAFKA_SSL_CERT_FILE="/cert.pem": cannot read it'),
        'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE: give both (mutual TLS) or neither',
        'KAFKA_SASL_MECHANISM="gssapi": must be one of plain, scram-sha-256, scram-sha-512',
        'KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM',
        'KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM',
        'KAFKA_CONNECTION_TIMEOUT_MS="5s": must be an integer from 100 to 300000',
      ]),
    );
    expect(problems).toHaveLength(9);
    expect(problemsOf(() => kafkaConfigFromEnv({}))).toEqual(['KAFKA_BROKERS: required, e.g. kafka-1:9092,kafka-2:9092']);
    expect(problemsOf(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SASL_USERNAME: 'u' }))).toEqual([
      'KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD given without KAFKA_SASL_MECHANISM',
    ]);
    expect(problemsOf(() => kafkaConfigFromEnv({ KAFKA_BROKERS: 'k:1', KAFKA_SSL: 'false', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' }))).toEqual([
      'KAFKA_SSL=false contradicts the KAFKA_SSL_* settings given',
    ]);
  });

  it('parseBrokers accepts host names, IPv4 and bracketed IPv6', () => {
    expect(parseBrokers('a.b-c_d:1,127.0.0.1:9092,[::1]:65535')).toEqual({ brokers: ['a.b-c_d:1', '127.0.0.1:9092', '[::1]:65535'], problems: [] });
    expect(parseBrokers('host:0').problems).toEqual(['KAFKA_BROKERS: "host:0" is not host:port']);
  });
});
