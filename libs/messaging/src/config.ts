/**
 * How to reach the Kafka cluster. Client-neutral: the adapter translates it. Secrets only ever
 * come from the environment (kafkaConfigFromEnv), never from files in the repo.
 */
import * as fs from 'node:fs';

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

export interface KafkaSaslConfig {
  mechanism: SaslMechanism;
  username: string;
  password: string;
}

/** TLS settings; PEM contents, not paths. */
export interface KafkaTlsConfig {
  ca?: string;
  cert?: string;
  key?: string;
  /** Default true. Only ever false against a local test broker. */
  rejectUnauthorized?: boolean;
}

export interface KafkaConnectionConfig {
  clientId: string;
  /** Bootstrap servers, `host:port`. */
  brokers: string[];
  /** true = TLS with the system CAs; an object for a private CA or client certificates. */
  ssl?: boolean | KafkaTlsConfig;
  sasl?: KafkaSaslConfig;
  /** TCP connect timeout. Default 3 000 ms. */
  connectionTimeoutMs?: number;
  /** Per-request timeout. Default 30 000 ms. */
  requestTimeoutMs?: number;
}

export class MessagingConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid Kafka configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'MessagingConfigError';
  }
}

const SASL_MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];
const BROKER = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/** Splits and checks a `host:port[,host:port]` list; returns the problems found. */
export function parseBrokers(raw: string): { brokers: string[]; problems: string[] } {
  const brokers = raw
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  const problems: string[] = [];
  if (brokers.length === 0) problems.push('KAFKA_BROKERS: required, e.g. kafka-1:9092,kafka-2:9092');
  for (const b of brokers) {
    const m = BROKER.exec(b);
    const port = m ? Number(m[1]) : 0;
    if (!m || port < 1 || port > 65535) problems.push(`KAFKA_BROKERS: "${b}" is not host:port`);
  }
  return { brokers, problems };
}

export interface FromEnvOptions {
  /** Used when KAFKA_CLIENT_ID is not set. */
  defaultClientId?: string;
  /** Reads the PEM files named by KAFKA_SSL_*_FILE. Default fs.readFileSync(path, 'utf8'). */
  readFile?: (path: string) => string;
}

/**
 * Reads the connection from the environment, reporting every problem at once:
 *
 * | variable                        | meaning                                              |
 * |---------------------------------|------------------------------------------------------|
 * | KAFKA_BROKERS                   | required, `host:port[,host:port]`                    |
 * | KAFKA_CLIENT_ID                 | default: options.defaultClientId, else `metering`    |
 * | KAFKA_SSL                       | `true` for TLS (implied by any KAFKA_SSL_*_FILE)     |
 * | KAFKA_SSL_CA_FILE               | PEM of a private CA                                  |
 * | KAFKA_SSL_CERT_FILE / _KEY_FILE | PEM client certificate and key (mutual TLS), a pair  |
 * | KAFKA_SSL_REJECT_UNAUTHORIZED   | `false` to accept any server certificate (tests only)|
 * | KAFKA_SASL_MECHANISM            | plain, scram-sha-256 or scram-sha-512                |
 * | KAFKA_SASL_USERNAME / _PASSWORD | required with a mechanism                            |
 * | KAFKA_CONNECTION_TIMEOUT_MS     | default 3000                                         |
 * | KAFKA_REQUEST_TIMEOUT_MS        | default 30000                                        |
 */
export function kafkaConfigFromEnv(env: NodeJS.ProcessEnv = process.env, options: FromEnvOptions = {}): KafkaConnectionConfig {
  const readFile = options.readFile ?? ((p: string) => fs.readFileSync(p, 'utf8'));
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const bool = (name: string): boolean | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    problems.push(`${name}="${v}": must be true or false`);
    return undefined;
  };
  const int = (name: string, min: number, max: number): number | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}="${v}": must be an integer from ${min} to ${max}`);
      return undefined;
    }
    return n;
  };
  const pem = (name: string): string | undefined => {
    const file = str(name);
    if (file === undefined) return undefined;
    try {
      return readFile(file);
    } catch (err) {
      problems.push(`${name}="${file}": cannot read it (${(err as Error).message})`);
      return undefined;
    }
  };

  const { brokers, problems: brokerProblems } = parseBrokers(str('KAFKA_BROKERS') ?? '');
  problems.push(...brokerProblems);
  const clientId = str('KAFKA_CLIENT_ID') ?? options.defaultClientId ?? 'metering';
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(clientId)) problems.push(`KAFKA_CLIENT_ID="${clientId}": use letters, digits, '.', '_' and '-'`);

  const sslFlag = bool('KAFKA_SSL');
  const ca = pem('KAFKA_SSL_CA_FILE');
  const cert = pem('KAFKA_SSL_CERT_FILE');
  const key = pem('KAFKA_SSL_KEY_FILE');
  const rejectUnauthorized = bool('KAFKA_SSL_REJECT_UNAUTHORIZED');
  if ((str('KAFKA_SSL_CERT_FILE') === undefined) !== (str('KAFKA_SSL_KEY_FILE') === undefined)) {
    problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE: give both (mutual TLS) or neither');
  }
  const anyTlsDetail = ca !== undefined || cert !== undefined || key !== undefined || rejectUnauthorized !== undefined;
  if (sslFlag === false && anyTlsDetail) problems.push('KAFKA_SSL=false contradicts the KAFKA_SSL_* settings given');
  let ssl: KafkaConnectionConfig['ssl'];
  if (anyTlsDetail && sslFlag !== false) {
    ssl = {
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(rejectUnauthorized !== undefined ? { rejectUnauthorized } : {}),
    };
  } else if (sslFlag) {
    ssl = true;
  }

  let sasl: KafkaSaslConfig | undefined;
  const mechanismRaw = str('KAFKA_SASL_MECHANISM');
  const username = str('KAFKA_SASL_USERNAME');
  const password = env.KAFKA_SASL_PASSWORD; // not trimmed: a password may end in a space
  if (mechanismRaw !== undefined) {
    const mechanism = mechanismRaw.toLowerCase() as SaslMechanism;
    if (!SASL_MECHANISMS.includes(mechanism)) {
      problems.push(`KAFKA_SASL_MECHANISM="${mechanismRaw}": must be one of ${SASL_MECHANISMS.join(', ')}`);
    }
    if (username === undefined) problems.push('KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM');
    if (password === undefined || password === '') problems.push('KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM');
    if (SASL_MECHANISMS.includes(mechanism) && username !== undefined && password) sasl = { mechanism, username, password };
  } else if (username !== undefined || (password !== undefined && password !== '')) {
    problems.push('KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD given without KAFKA_SASL_MECHANISM');
  }

  const connectionTimeoutMs = int('KAFKA_CONNECTION_TIMEOUT_MS', 100, 300_000);
  const requestTimeoutMs = int('KAFKA_REQUEST_TIMEOUT_MS', 100, 600_000);

  if (problems.length > 0) throw new MessagingConfigError(problems);
  return {
    clientId,
    brokers,
    ...(ssl !== undefined ? { ssl } : {}),
    ...(sasl !== undefined ? { sasl } : {}),
    ...(connectionTimeoutMs !== undefined ? { connectionTimeoutMs } : {}),
    ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
  };
}
