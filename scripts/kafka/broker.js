'use strict';
// A real single-node Apache Kafka for local runs and tests.
//
//   KAFKA_BROKERS set          -> use it, start nothing
//   a Docker engine answers    -> testcontainers @testcontainers/kafka (KRaft)
//   otherwise                  -> the broker jars from Maven Central (cached outside the repo),
//                                 run as a JVM on free loopback ports in a fresh temp dir
//
// Plain CommonJS so that node, jest's global setup and CI can all load it without a build;
// the types live in broker.d.ts. See README.md beside this file.

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
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
const MARKER_PROPERTY = 'metering.kafka.harness';
const OWNER_FILE = 'harness.json';

class KafkaHarnessError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'KafkaHarnessError';
  }
}

// ---------------------------------------------------------------- paths and versions

function kafkaVersion(explicit) {
  const version = explicit || process.env.KAFKA_VERSION || DEFAULT_KAFKA_VERSION;
  if (!/^\d+\.\d+\.\d+([.-][A-Za-z0-9.-]+)?$/.test(version)) {
    throw new KafkaHarnessError(`KAFKA_VERSION "${version}" is not a Kafka release number like 3.9.2 or 4.1.1`);
  }
  return version;
}

function majorOf(version) {
  return Number(version.split('.')[0]);
}

function cacheRoot() {
  if (process.env.KAFKA_CACHE_DIR) return path.resolve(process.env.KAFKA_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'metering-kafka');
}

/** Where the jars of one broker version live: `<cache>/<version>/libs`, or KAFKA_LIBS_DIR. */
function libsDirFor(version) {
  if (process.env.KAFKA_LIBS_DIR) return path.resolve(process.env.KAFKA_LIBS_DIR);
  return path.join(cacheRoot(), version, 'libs');
}

/** Parent of every broker temp dir this harness creates (one per user). */
function runRoot() {
  const uid = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username;
  return path.join(os.tmpdir(), `metering-kafka-${uid}`);
}

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

function findJava() {
  if (process.env.JAVA_HOME) {
    const candidate = path.join(process.env.JAVA_HOME, 'bin', process.platform === 'win32' ? 'java.exe' : 'java');
    if (fs.existsSync(candidate)) return candidate;
  }
  return which('java');
}

function findMaven() {
  if (process.env.MAVEN_HOME) {
    const candidate = path.join(process.env.MAVEN_HOME, 'bin', 'mvn');
    if (fs.existsSync(candidate)) return candidate;
  }
  return which('mvn');
}

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

/** `java -version` output and the major version in it. */
function javaVersion(java) {
  const out = childProcess.spawnSync(java, ['-version'], { encoding: 'utf8' });
  const text = `${out.stderr || ''}${out.stdout || ''}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return { text, major: null };
  const first = Number(match[1]);
  return { text, major: first === 1 ? Number(match[2]) : first };
}

// ---------------------------------------------------------------- jar resolution (Maven)

function jarList(dir) {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.jar')).sort();
}

/** True when `<libs>/.complete` lists jars that are all still there. */
function libsComplete(libsDir) {
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(libsDir, '.complete'), 'utf8'));
    return Array.isArray(marker.jars) && marker.jars.length > 0 && marker.jars.every((j) => fs.existsSync(path.join(libsDir, j)));
  } catch {
    return false;
  }
}

function pom(artifactId, dependencies) {
  const deps = dependencies
    .map(
      (d) =>
        `    <dependency><groupId>${d.groupId}</groupId><artifactId>${d.artifactId}</artifactId><version>${d.version}</version>` +
        (d.exclusions && d.exclusions.length
          ? `<exclusions>${d.exclusions
              .map(([g, a]) => `<exclusion><groupId>${g}</groupId><artifactId>${a}</artifactId></exclusion>`)
              .join('')}</exclusions>`
          : '') +
        '</dependency>',
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by scripts/kafka/broker.js: resolves the jars a Kafka broker needs -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.metering.kafka</groupId>
  <artifactId>${artifactId}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
${deps}
  </dependencies>
</project>
`;
}

function runMaven(mvn, pomFile, outputDir, log) {
  const args = [
    '-B',
    '-q',
    '-f',
    pomFile,
    'dependency:copy-dependencies',
    '-DincludeScope=runtime',
    `-DoutputDirectory=${outputDir}`,
  ];
  log(`mvn ${args.join(' ')}`);
  const res = childProcess.spawnSync(mvn, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.error || res.status !== 0) {
    const detail = `${res.error ? res.error.message : ''}\n${res.stdout || ''}\n${res.stderr || ''}`.trim();
    throw new KafkaHarnessError(`Kafka harness: Maven could not resolve the broker jars (exit ${res.status}):\n${detail.slice(-4000)}`);
  }
}

/**
 * The SLF4J binding that sends the broker's logs to a file: Kafka 4.x already brings log4j2, so its
 * slf4j bridge of the same version; Kafka 3.x brings none, so reload4j (what its tarball ships).
 */
function loggingBinding(jars) {
  const version = (prefix) => {
    const re = new RegExp(`^${prefix}-(\\d[^-]*(?:-[^-]+)?)\\.jar$`);
    for (const j of jars) {
      const m = re.exec(j);
      if (m) return m[1];
    }
    return null;
  };
  const slf4j = version('slf4j-api');
  if (!slf4j) return null;
  const slf4j2 = majorOf(slf4j) >= 2;
  const log4j2 = version('log4j-core');
  if (log4j2) {
    return [
      {
        groupId: 'org.apache.logging.log4j',
        artifactId: slf4j2 ? 'log4j-slf4j2-impl' : 'log4j-slf4j-impl',
        version: log4j2,
        exclusions: [
          ['org.slf4j', 'slf4j-api'],
          ['org.apache.logging.log4j', 'log4j-api'],
          ['org.apache.logging.log4j', 'log4j-core'],
        ],
      },
    ];
  }
  return [
    {
      groupId: 'org.slf4j',
      artifactId: 'slf4j-reload4j',
      version: slf4j,
      exclusions: [['org.slf4j', 'slf4j-api']],
    },
    // the reload4j that Kafka 3.9's own tarball ships (slf4j-reload4j 1.7.36 would pull 1.2.19)
    { groupId: 'ch.qos.reload4j', artifactId: 'reload4j', version: '1.2.25' },
  ];
}

/**
 * Makes sure the jars of `version` are in the cache; resolves them with Maven when not.
 * Safe to run concurrently: each run resolves into its own staging dir and renames it into place.
 * @returns {string} the libs dir
 */
function ensureKafkaLibs(opts = {}) {
  const version = kafkaVersion(opts.version);
  const log = opts.log || (() => {});
  const libsDir = libsDirFor(version);
  if (libsComplete(libsDir)) return libsDir;

  const mvn = findMaven();
  if (!mvn) {
    throw new KafkaHarnessError(installHint(`the broker jars for Kafka ${version} are not cached in ${libsDir} and \`mvn\` is not on PATH`));
  }
  if (!findJava()) throw new KafkaHarnessError(installHint('`java` is not on PATH (nor in JAVA_HOME)'));

  const parent = path.dirname(libsDir);
  fs.mkdirSync(parent, { recursive: true });
  const work = fs.mkdtempSync(path.join(parent, '.resolve-'));
  const staging = path.join(work, 'libs');
  const started = Date.now();
  try {
    log(`resolving org.apache.kafka:kafka_2.13:${version} into ${libsDir}`);
    const brokerPom = path.join(work, 'pom.xml');
    fs.writeFileSync(
      brokerPom,
      pom(`kafka-broker-${version}`, [{ groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version }]),
    );
    runMaven(mvn, brokerPom, staging, log);
    const binding = loggingBinding(jarList(staging));
    if (binding) {
      const bindingPom = path.join(work, 'logging-pom.xml');
      fs.writeFileSync(bindingPom, pom(`kafka-broker-logging-${version}`, binding));
      runMaven(mvn, bindingPom, staging, log);
    }
    const jars = jarList(staging);
    if (!jars.some((j) => j.startsWith(`kafka_2.13-${version}`))) {
      throw new KafkaHarnessError(`Kafka harness: Maven finished but kafka_2.13-${version}.jar is not among the resolved jars`);
    }
    fs.writeFileSync(
      path.join(staging, '.complete'),
      JSON.stringify({ version, jars, resolvedAt: new Date().toISOString() }, null, 2),
    );
    fs.rmSync(libsDir, { recursive: true, force: true });
    try {
      fs.renameSync(staging, libsDir);
    } catch (err) {
      // another process won the race: fine if what it left is complete
      if (!libsComplete(libsDir)) throw err;
    }
    log(`resolved ${jars.length} jars in ${Date.now() - started} ms`);
    return libsDir;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- process bookkeeping

function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Start time of a process in clock ticks since boot (Linux), to tell a live pid from a reused one. */
function procStartTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] || null; // field 22 of stat; fields[] starts at field 3
  } catch {
    return null;
  }
}

function commandLine(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    const res = childProcess.spawnSync('ps', ['-ww', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
    return res.status === 0 ? res.stdout : '';
  }
}

/** True when `pid` is a JVM this harness started for `dir`. */
function isOurJvm(pid, dir) {
  return pidAlive(pid) && commandLine(pid).includes(`-D${MARKER_PROPERTY}=${dir}`);
}

function ownerAlive(owner) {
  if (!owner || !pidAlive(owner.pid)) return false;
  if (owner.startTime == null) return true;
  const now = procStartTime(owner.pid);
  return now == null || now === owner.startTime;
}

/**
 * Kills brokers (and removes temp dirs) left by runs whose owning process is gone, e.g. a jest run
 * killed with SIGKILL before its watchdog could act. Only touches dirs and JVMs this harness made.
 */
function reapStale(log = () => {}) {
  const root = runRoot();
  let entries;
  try {
    entries = fs.readdirSync(root);
  } catch {
    return 0;
  }
  let reaped = 0;
  for (const name of entries) {
    if (!name.startsWith('broker-')) continue;
    const dir = path.join(root, name);
    let info = null;
    try {
      info = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8'));
    } catch {
      // no owner file: a run that died while creating it, or one being created right now
      try {
        if (Date.now() - fs.statSync(dir).mtimeMs < 10 * 60_000) continue;
      } catch {
        continue;
      }
    }
    if (info && ownerAlive(info.owner)) continue;
    if (info && info.javaPid && isOurJvm(info.javaPid, dir)) {
      log(`killing broker pid ${info.javaPid} left by a dead run (${dir})`);
      try {
        process.kill(info.javaPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (info && info.watchdogPid && pidAlive(info.watchdogPid) && commandLine(info.watchdogPid).includes(dir)) {
      try {
        process.kill(info.watchdogPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    reaped++;
  }
  return reaped;
}

// A detached shell that outlives us: when the owning process dies without stopping the broker
// (jest killed, Ctrl-C in the wrong place), it stops the JVM and removes the temp dir.
const WATCHDOG = `
owner="$1"; jpid="$2"; marker="$3"; dir="$4"
ours() {
  kill -0 "$jpid" 2>/dev/null || return 1
  if [ -r "/proc/$jpid/cmdline" ]; then tr '\\000' ' ' < "/proc/$jpid/cmdline"; else ps -ww -o args= -p "$jpid"; fi | grep -qF -- "$marker"
}
while kill -0 "$owner" 2>/dev/null; do
  kill -0 "$jpid" 2>/dev/null || exit 0
  sleep 1
done
if ours; then
  kill -TERM "$jpid" 2>/dev/null
  i=0
  while [ $i -lt 10 ] && ours; do sleep 1; i=$((i+1)); done
  ours && kill -KILL "$jpid" 2>/dev/null
fi
rm -rf -- "$dir"
`;

function startWatchdog(ownerPid, javaPid, dir) {
  const child = childProcess.spawn(
    '/bin/sh',
    ['-c', WATCHDOG, 'kafka-harness-watchdog', String(ownerPid), String(javaPid), `-D${MARKER_PROPERTY}=${dir}`, dir],
    { detached: true, stdio: 'ignore' },
  );
  child.unref();
  return child.pid;
}

function killGroup(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

// ---------------------------------------------------------------- ports, config, readiness

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'. */
function clusterId() {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function serverProperties({ version, port, controllerPort, dataDir, partitions }) {
  const props = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'log.dirs': dataDir,
    'num.partitions': String(partitions),
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    'auto.create.topics.enable': 'false',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '1',
    'group.initial.rebalance.delay.ms': '0',
    // lets tests use short session timeouts (crash detection in ~1 s); production clients are unaffected
    'group.min.session.timeout.ms': '1000',
    // after a SIGKILL the controller refuses the broker's new registration until the old one's
    // session expires: 9 s by default, which made every hard restart() take ~11 s
    'broker.session.timeout.ms': '3000',
    'broker.heartbeat.interval.ms': '500',
    // small machine: fewer threads than the defaults sized for production
    'num.network.threads': '2',
    'num.io.threads': '2',
    'background.threads': '2',
    'num.recovery.threads.per.data.dir': '1',
    'log.cleaner.threads': '1',
    'log.cleaner.dedupe.buffer.size': String(8 * 1024 * 1024),
  };
  if (majorOf(version) >= 4) {
    // Kafka 4 prefers the dynamic quorum (KIP-853): bootstrap servers + `format --standalone`.
    props['controller.quorum.bootstrap.servers'] = `127.0.0.1:${controllerPort}`;
    props['share.coordinator.state.topic.replication.factor'] = '1';
    props['share.coordinator.state.topic.min.isr'] = '1';
  } else {
    props['controller.quorum.voters'] = `1@127.0.0.1:${controllerPort}`;
  }
  return `# generated by scripts/kafka/broker.js\n${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

function loggingConfig(logDir, level) {
  const file = path.join(logDir, 'server.log');
  const log4j2 = [
    'status = error',
    'appender.file.type = File',
    'appender.file.name = FILE',
    `appender.file.fileName = ${file}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    `rootLogger.level = ${level}`,
    'rootLogger.appenderRef.file.ref = FILE',
    '',
  ].join('\n');
  const log4j1 = [
    `log4j.rootLogger=${level}, FILE`,
    'log4j.appender.FILE=org.apache.log4j.FileAppender',
    `log4j.appender.FILE.File=${file}`,
    'log4j.appender.FILE.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.FILE.layout.ConversionPattern=[%d] %p %m (%c)%n',
    '',
  ].join('\n');
  return { log4j2, log4j1 };
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until the coordinators the tests need have loaded, so that the first consumer group and
 * the first idempotent producer of a run do not meet "coordinator is loading" answers: a group
 * lookup creates and loads __consumer_offsets, and an idempotent producer gets a producer id.
 */
async function warmUp(kafka, deadline) {
  for (;;) {
    const admin = kafka.admin({ retry: { retries: 0 } });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 2, initialRetryTime: 50 } });
    try {
      await admin.connect();
      await admin.describeCluster(); // loads the broker list describeGroups needs
      await admin.describeGroups(['metering-kafka-harness-warm-up']);
      await producer.connect();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    } finally {
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
    await sleep(50);
  }
}

/**
 * Polls the broker with a kafkajs admin metadata request until it answers with itself as a live
 * broker and an elected controller. `failed()` returns an error message to stop early.
 */
async function waitUntilReady(brokers, { timeoutMs, failed }) {
  const { Kafka, logLevel } = require('kafkajs');
  const kafka = new Kafka({
    clientId: 'metering-kafka-harness',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer yet';
  while (Date.now() < deadline) {
    const stop = failed();
    if (stop) throw new KafkaHarnessError(stop);
    const admin = kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0 && cluster.controller != null && cluster.controller >= 0) {
        await warmUp(kafka, deadline);
        return cluster;
      }
      lastError = `metadata without a controller yet: ${JSON.stringify(cluster)}`;
    } catch (err) {
      lastError = err && err.message ? err.message : String(err);
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await sleep(100);
  }
  throw new KafkaHarnessError(`Kafka harness: broker at ${brokers} not ready after ${timeoutMs} ms (last error: ${lastError})`);
}

// ---------------------------------------------------------------- JVM broker

const BIND_FAILURE = /BindException|Address already in use/;

/**
 * Application class-data sharing: the first broker of a version records the classes it loaded into
 * an archive next to the jars (written when it exits normally); later JVMs map it and start about
 * a third faster (measured: 2.3 s -> 1.5 s to ready for 3.9.2). The name holds a hash of the JVM
 * build and the jar list, so another JDK or other jars get their own archive. KAFKA_CDS=0 disables.
 */
function cdsArchiveFor(libsDir, javaText) {
  if (process.env.KAFKA_CDS === '0') return null;
  // recordings left by runs killed before they could promote theirs
  const dir = path.dirname(libsDir);
  try {
    for (const f of fs.readdirSync(dir)) {
      const file = path.join(dir, f);
      if (f.startsWith('cds-') && f.endsWith('.tmp') && Date.now() - fs.statSync(file).mtimeMs > 3_600_000) fs.rmSync(file, { force: true });
    }
  } catch {
    // best effort
  }
  const hash = crypto.createHash('sha256').update(javaText).update(libsDir).update(jarList(libsDir).join('\n')).digest('hex');
  return path.join(path.dirname(libsDir), `cds-${path.basename(libsDir)}-${hash.slice(0, 16)}.jsa`);
}

function cdsArgs(archive, { mayRecord, recordTo = null }) {
  if (!archive) return [];
  if (fs.existsSync(archive)) return [`-XX:SharedArchiveFile=${archive}`];
  return mayRecord && recordTo ? [`-XX:ArchiveClassesAtExit=${recordTo}`] : [];
}

function javaArgs({ dir, logDir, libsDir, heap, extra, mainClass, mainArgs }) {
  return [
    '-Xms32m',
    `-Xmx${heap}`,
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:-UsePerfData',
    '-XX:+ExitOnOutOfMemoryError',
    '-Xshare:auto',
    '-Djava.awt.headless=true',
    `-D${MARKER_PROPERTY}=${dir}`,
    `-Dkafka.logs.dir=${logDir}`,
    `-Dlog4j2.configurationFile=${path.join(dir, 'log4j2.properties')}`,
    `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
    ...extra,
    '-cp',
    `${libsDir}${path.sep}*`,
    mainClass,
    ...mainArgs,
  ];
}

async function startJvmBroker(opts, log) {
  const version = kafkaVersion(opts.version);
  const java = findJava();
  if (!java) throw new KafkaHarnessError(installHint('`java` is not on PATH (nor in JAVA_HOME)'));
  const { text: javaText, major: javaMajor } = javaVersion(java);
  const needed = majorOf(version) >= 4 ? 17 : 11;
  if (javaMajor != null && javaMajor < needed) {
    throw new KafkaHarnessError(installHint(`Kafka ${version} needs Java ${needed}+, but ${java} is Java ${javaMajor}`));
  }
  const libsDir = ensureKafkaLibs({ version, log });
  const cdsArchive = cdsArchiveFor(libsDir, javaText);
  let cdsRecording = null; // where this run's first JVM records the archive, if it does

  reapStale(log);
  const root = runRoot();
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const dir = fs.mkdtempSync(path.join(root, 'broker-'));
  const dataDir = path.join(dir, 'data');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const propsFile = path.join(dir, 'server.properties');
  const partitions = opts.partitions || Number(process.env.KAFKA_NUM_PARTITIONS) || DEFAULT_PARTITIONS;
  const heap = opts.heap || process.env.KAFKA_HEAP || DEFAULT_HEAP;
  const extra = (opts.jvmArgs || (process.env.KAFKA_JVM_OPTS || '').split(/\s+/)).filter(Boolean);
  const startTimeoutMs = opts.startTimeoutMs || Number(process.env.KAFKA_START_TIMEOUT_MS) || DEFAULT_START_TIMEOUT_MS;
  const stopTimeoutMs = opts.stopTimeoutMs || DEFAULT_STOP_TIMEOUT_MS;
  const { log4j2, log4j1 } = loggingConfig(logDir, opts.logLevel || process.env.KAFKA_LOG_LEVEL || 'INFO');
  fs.writeFileSync(path.join(dir, 'log4j2.properties'), log4j2);
  fs.writeFileSync(path.join(dir, 'log4j.properties'), log4j1);
  const owner = { pid: process.pid, startTime: procStartTime(process.pid) };
  const writeOwnerFile = (extraInfo) =>
    fs.writeFileSync(
      path.join(dir, OWNER_FILE),
      JSON.stringify({ owner, version, dir, ...extraInfo }, null, 2),
    );
  writeOwnerFile({});

  let port;
  let controllerPort;
  let child = null;
  let watchdogPid = null;
  let exitInfo = null;
  let stopping = false;
  let stopped = false;
  let exited = Promise.resolve();
  const stdoutFile = path.join(logDir, 'stdout.log');
  const serverLog = path.join(logDir, 'server.log');

  const format = () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    const args = ['format', '-t', clusterId(), '-c', propsFile];
    if (majorOf(version) >= 4) args.push('--standalone');
    const res = childProcess.spawnSync(
      java,
      javaArgs({
        dir,
        logDir,
        libsDir,
        heap: '128m',
        extra: [...cdsArgs(cdsArchive, { mayRecord: false }), ...extra],
        mainClass: 'kafka.tools.StorageTool',
        mainArgs: args,
      }),
      { encoding: 'utf8' },
    );
    if (res.status !== 0) {
      throw new KafkaHarnessError(
        `Kafka harness: formatting KRaft storage failed (exit ${res.status}):\n${`${res.stdout}\n${res.stderr}`.trim().slice(-3000)}`,
      );
    }
  };

  const spawnBroker = () => {
    exitInfo = null;
    const out = fs.openSync(stdoutFile, 'a');
    cdsRecording = cdsArchive && !fs.existsSync(cdsArchive) ? `${cdsArchive}.${process.pid}.${Date.now()}.tmp` : null;
    const cds = cdsArgs(cdsArchive, { mayRecord: true, recordTo: cdsRecording });
    try {
      child = childProcess.spawn(
        java,
        javaArgs({ dir, logDir, libsDir, heap, extra: [...cds, ...extra], mainClass: 'kafka.Kafka', mainArgs: [propsFile] }),
        { stdio: ['ignore', out, out], detached: false },
      );
    } finally {
      fs.closeSync(out);
    }
    const me = child;
    exited = new Promise((resolve) => {
      me.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        if (!stopping && !stopped && opts.onUnexpectedExit) opts.onUnexpectedExit(exitInfo);
        resolve();
      });
      me.once('error', (err) => {
        exitInfo = { code: null, signal: null, error: err };
        resolve();
      });
    });
    child.unref();
    watchdogPid = startWatchdog(process.pid, child.pid, dir);
    writeOwnerFile({ javaPid: child.pid, watchdogPid, port, controllerPort, dataDir, logDir });
  };

  const failedEarly = () => {
    if (!exitInfo) return null;
    const why = exitInfo.error ? exitInfo.error.message : `exit code ${exitInfo.code}, signal ${exitInfo.signal}`;
    return `Kafka harness: the broker JVM stopped during start-up (${why}).\n--- ${serverLog} ---\n${tail(serverLog)}\n--- ${stdoutFile} ---\n${tail(stdoutFile, 15)}`;
  };

  const brokersString = () => `127.0.0.1:${port}`;

  const killJvm = async (signal, timeoutMs) => {
    if (!child || exitInfo) {
      discardCdsRecording(); // it died on its own: whatever it recorded is not a normal run
      return;
    }
    killGroup(watchdogPid, 'SIGKILL');
    watchdogPid = null;
    try {
      child.kill(signal);
    } catch {
      // gone already
    }
    let timer;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut && !exitInfo) {
      log(`broker did not stop within ${timeoutMs} ms of ${signal}; sending SIGKILL`);
      try {
        child.kill('SIGKILL');
      } catch {
        // gone already
      }
      await exited;
    }
    promoteCdsRecording();
  };

  const discardCdsRecording = () => {
    if (cdsRecording) fs.rmSync(cdsRecording, { force: true });
    cdsRecording = null;
  };

  const promoteCdsRecording = () => {
    if (!cdsRecording) return;
    const recorded = cdsRecording;
    cdsRecording = null;
    try {
      if (fs.statSync(recorded).size > 0 && !fs.existsSync(cdsArchive)) {
        fs.renameSync(recorded, cdsArchive);
        log(`recorded the class-data archive ${cdsArchive}`);
      }
    } catch {
      // not written (killed, or the JVM could not dump): the next run tries again
    } finally {
      fs.rmSync(recorded, { force: true });
    }
  };

  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    [port, controllerPort] = opts.ports || (await freePorts(2));
    fs.writeFileSync(
      propsFile,
      serverProperties({ version, port, controllerPort, dataDir, partitions }),
    );
    format();
    spawnBroker();
    try {
      await waitUntilReady(brokersString(), { timeoutMs: startTimeoutMs, failed: failedEarly });
      break;
    } catch (err) {
      await killJvm('SIGKILL', 5000);
      const bindFailure = BIND_FAILURE.test(tail(serverLog, 200)) || BIND_FAILURE.test(tail(stdoutFile, 50));
      if (bindFailure && !opts.ports && attempt < 3) {
        log(`port ${port} or ${controllerPort} was taken meanwhile; retrying with other ports`);
        fs.writeFileSync(serverLog, '');
        continue;
      }
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  const startupMs = Date.now() - started;
  log(`Kafka ${version} ready at ${brokersString()} in ${startupMs} ms (pid ${child.pid}, dir ${dir})`);

  const handle = {
    mode: 'jvm',
    version,
    get brokers() {
      return brokersString();
    },
    get pid() {
      return child ? child.pid : undefined;
    },
    dir,
    logFile: serverLog,
    startupMs,
    async stop() {
      if (stopped) return;
      stopping = true;
      try {
        await killJvm('SIGTERM', stopTimeoutMs);
      } finally {
        stopped = true;
        if (!opts.keepDir && !process.env.KAFKA_KEEP_DIR) fs.rmSync(dir, { recursive: true, force: true });
        else log(`kept ${dir}`);
      }
    },
    async restart(restartOpts = {}) {
      if (stopped) throw new KafkaHarnessError('Kafka harness: restart() after stop()');
      stopping = true;
      try {
        await killJvm(restartOpts.hard ? 'SIGKILL' : 'SIGTERM', stopTimeoutMs);
        const t0 = Date.now();
        spawnBroker();
        await waitUntilReady(brokersString(), { timeoutMs: startTimeoutMs, failed: failedEarly });
        log(`Kafka ${version} restarted at ${brokersString()} in ${Date.now() - t0} ms (pid ${child.pid})`);
      } finally {
        stopping = false;
      }
    },
  };
  return handle;
}

// ---------------------------------------------------------------- Docker (testcontainers)

/** Confluent Platform image whose Apache Kafka matches `version` (major.minor). */
function dockerImageFor(version) {
  if (process.env.KAFKA_DOCKER_IMAGE) return process.env.KAFKA_DOCKER_IMAGE;
  const [maj, min] = version.split('.').map(Number);
  // Confluent Platform 7.x = Kafka 3.(x-4)... 7.9 = 3.9; 8.0 = 4.0, 8.1 = 4.1, 8.2 = 4.2 ...
  if (maj === 3 && min >= 4) return `confluentinc/cp-kafka:7.${min}.0`;
  if (maj === 4) return `confluentinc/cp-kafka:8.${min}.0`;
  throw new KafkaHarnessError(`Kafka harness: no known cp-kafka image for Kafka ${version}; set KAFKA_DOCKER_IMAGE`);
}

async function dockerAvailable() {
  try {
    const { getContainerRuntimeClient } = require('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

async function startDockerBroker(opts, log) {
  const version = kafkaVersion(opts.version);
  const { KafkaContainer } = require('@testcontainers/kafka');
  const image = dockerImageFor(version);
  const partitions = opts.partitions || Number(process.env.KAFKA_NUM_PARTITIONS) || DEFAULT_PARTITIONS;
  const started = Date.now();
  let container = new KafkaContainer(image);
  if (!/:(8|9)\./.test(image)) container = container.withKraft();
  container = container.withEnvironment({
    KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    KAFKA_NUM_PARTITIONS: String(partitions),
    KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '1000',
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
    KAFKA_HEAP_OPTS: `-Xmx${opts.heap || process.env.KAFKA_HEAP || DEFAULT_HEAP}`,
  });
  const started_ = await container.start();
  const brokersOf = (c) => `${c.getHost()}:${c.getMappedPort(9093)}`;
  const brokers = brokersOf(started_);
  await waitUntilReady(brokers, { timeoutMs: opts.startTimeoutMs || DEFAULT_START_TIMEOUT_MS, failed: () => null });
  const startupMs = Date.now() - started;
  log(`Kafka ${version} (${image}) ready at ${brokers} in ${startupMs} ms`);
  let stopped = false;
  return {
    mode: 'docker',
    version,
    brokers,
    startupMs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await started_.stop();
    },
    async restart() {
      await started_.restart();
      const now = brokersOf(started_);
      if (now !== brokers) {
        throw new KafkaHarnessError(`Kafka harness: the container came back on ${now} instead of ${brokers}; restart() needs stable ports`);
      }
      await waitUntilReady(brokers, { timeoutMs: opts.startTimeoutMs || DEFAULT_START_TIMEOUT_MS, failed: () => null });
    },
  };
}

// ---------------------------------------------------------------- entry point

/**
 * Starts (or finds) a single-node Kafka broker.
 * @param {import('./broker').StartBrokerOptions} [opts]
 * @returns {Promise<import('./broker').KafkaBroker>}
 */
async function startBroker(opts = {}) {
  const log = opts.log || (() => {});
  const external = opts.brokers || (opts.fresh ? undefined : process.env.KAFKA_BROKERS);
  if (external) {
    log(`using the broker(s) at ${external} (KAFKA_BROKERS); starting nothing`);
    return {
      mode: 'external',
      version: 'external',
      brokers: external,
      startupMs: 0,
      async stop() {},
      async restart() {
        throw new KafkaHarnessError('Kafka harness: cannot restart a broker it did not start (KAFKA_BROKERS is set)');
      },
    };
  }
  const mode = (opts.mode || process.env.KAFKA_HARNESS_MODE || 'auto').toLowerCase();
  if (!['auto', 'docker', 'jvm'].includes(mode)) {
    throw new KafkaHarnessError(`Kafka harness: KAFKA_HARNESS_MODE must be auto, docker or jvm, not "${mode}"`);
  }
  if (mode === 'docker' || (mode === 'auto' && (await dockerAvailable()))) {
    return startDockerBroker(opts, log);
  }
  return startJvmBroker(opts, log);
}

module.exports = {
  startBroker,
  ensureKafkaLibs,
  reapStale,
  libsDirFor,
  runRoot,
  dockerImageFor,
  DEFAULT_KAFKA_VERSION,
  KafkaHarnessError,
};
