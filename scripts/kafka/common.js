// @ts-check
'use strict';
// What every part of the Kafka harness shares: defaults, the error type, versions, the cache and
// temp-dir locations, finding `java` and `mvn`, and small helpers. Depends on nothing else here.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/**
 * Default broker version. 3.9.x is the last line with the full protocol range that kafkajs
 * 2.2.4 was written against; 4.x works too (see README.md for what was tested).
 */
const DEFAULT_KAFKA_VERSION = '3.9.2';
const DEFAULT_PARTITIONS = 4;
const DEFAULT_HEAP = '384m';
const DEFAULT_START_TIMEOUT_MS = 90_000;
const DEFAULT_STOP_TIMEOUT_MS = 15_000;
/** JVM system property naming a broker's temp dir: how this harness recognises its own JVMs. */
const MARKER_PROPERTY = 'metering.kafka.harness';
/** File in each broker temp dir recording its owner process, JVM pid and ports. */
const OWNER_FILE = 'harness.json';

class KafkaHarnessError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'KafkaHarnessError';
  }
}

// ---------------------------------------------------------------- paths and versions

/**
 * The version asked for, else $KAFKA_VERSION, else the default; checked to look like a release.
 * @param {string | undefined} [explicit]
 * @returns {string}
 */
function kafkaVersion(explicit) {
  const version = explicit || process.env.KAFKA_VERSION || DEFAULT_KAFKA_VERSION;
  if (!/^\d+\.\d+\.\d+([.-][A-Za-z0-9.-]+)?$/.test(version)) {
    throw new KafkaHarnessError(`KAFKA_VERSION "${version}" is not a Kafka release number like 3.9.2 or 4.1.1`);
  }
  return version;
}

/**
 * @param {string} version
 * @returns {number}
 */
function majorOf(version) {
  return Number(version.split('.')[0]);
}

/** @returns {string} */
function cacheRoot() {
  if (process.env.KAFKA_CACHE_DIR) return path.resolve(process.env.KAFKA_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'metering-kafka');
}

/**
 * Where the jars of one broker version live: `<cache>/<version>/libs`, or KAFKA_LIBS_DIR.
 * @param {string} version
 * @returns {string}
 */
function libsDirFor(version) {
  if (process.env.KAFKA_LIBS_DIR) return path.resolve(process.env.KAFKA_LIBS_DIR);
  return path.join(cacheRoot(), version, 'libs');
}

/**
 * Parent of every broker temp dir this harness creates (one per user).
 * @returns {string}
 */
function runRoot() {
  const uid = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username;
  return path.join(os.tmpdir(), `metering-kafka-${uid}`);
}

// ---------------------------------------------------------------- tools on the machine

/**
 * @param {string} command
 * @returns {string | null} the executable's path on PATH
 */
function which(command) {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, command + ext);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** @returns {string | null} */
function findJava() {
  if (process.env.JAVA_HOME) {
    const candidate = path.join(process.env.JAVA_HOME, 'bin', process.platform === 'win32' ? 'java.exe' : 'java');
    if (fs.existsSync(candidate)) return candidate;
  }
  return which('java');
}

/** @returns {string | null} */
function findMaven() {
  if (process.env.MAVEN_HOME) {
    const candidate = path.join(process.env.MAVEN_HOME, 'bin', 'mvn');
    if (fs.existsSync(candidate)) return candidate;
  }
  return which('mvn');
}

/**
 * @param {string} missing what is missing, for the first line of the message
 * @returns {string}
 */
function installHint(missing) {
  return (
    `Kafka harness: cannot provide a Kafka broker: ${missing}.\n` +
    'Do one of:\n' +
    '  - install a JDK 17+ and Maven 3.6+ (Debian/Ubuntu: `apt-get install -y openjdk-17-jdk-headless maven`;\n' +
    '    macOS: `brew install openjdk@17 maven`), then run `node scripts/kafka/prefetch.js` once;\n' +
    '  - or start a Docker engine (the harness then uses testcontainers);\n' +
    '  - or point KAFKA_BROKERS at a running broker (host:port[,host:port]).'
  );
}

// ---------------------------------------------------------------- small helpers

/**
 * @param {string} dir
 * @returns {string[]} the `.jar` files in `dir`, sorted
 */
function jarList(dir) {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.jar')).sort();
}

/**
 * @param {string} file
 * @param {number} [lines]
 * @returns {string} the last `lines` lines of `file`, or '(no log)'
 */
function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = {
  DEFAULT_KAFKA_VERSION,
  DEFAULT_PARTITIONS,
  DEFAULT_HEAP,
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  MARKER_PROPERTY,
  OWNER_FILE,
  KafkaHarnessError,
  kafkaVersion,
  majorOf,
  cacheRoot,
  libsDirFor,
  runRoot,
  which,
  findJava,
  findMaven,
  installHint,
  jarList,
  tail,
  sleep,
};
