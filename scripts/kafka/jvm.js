// @ts-check
'use strict';
// The JVM broker: Apache Kafka's own jars (maven.js) run by `java` as a single KRaft node on free
// loopback ports in a fresh temp dir; start, restart (graceful or SIGKILL) and stop. A watchdog
// and the reaper (processes.js) make sure nothing outlives the run.

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  DEFAULT_PARTITIONS,
  DEFAULT_HEAP,
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  OWNER_FILE,
  KafkaHarnessError,
  kafkaVersion,
  majorOf,
  runRoot,
  findJava,
  installHint,
  tail,
} = require('./common');
const { ensureKafkaLibs } = require('./maven');
const { procStartTime, reapStale, startWatchdog, killGroup } = require('./processes');
const { waitUntilReady } = require('./ready');
const {
  BIND_FAILURE,
  javaVersion,
  freePorts,
  clusterId,
  serverProperties,
  loggingConfig,
  cdsArchiveFor,
  cdsArgs,
  javaArgs,
} = require('./jvm-config');

/** @typedef {import('./broker').StartBrokerOptions} StartBrokerOptions */
/** @typedef {import('./broker').KafkaBroker} KafkaBroker */
/** @typedef {{ code: number | null; signal: NodeJS.Signals | null; error?: Error }} ExitInfo */

/**
 * Starts a broker JVM of our own; resolves once it answers metadata requests and is warmed up.
 * @param {StartBrokerOptions} opts
 * @param {(message: string) => void} log
 * @returns {Promise<KafkaBroker>}
 */
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
  /** @type {string | null} */
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
  /** @param {Record<string, unknown>} extraInfo */
  const writeOwnerFile = (extraInfo) =>
    fs.writeFileSync(
      path.join(dir, OWNER_FILE),
      JSON.stringify({ owner, version, dir, ...extraInfo }, null, 2),
    );
  writeOwnerFile({});

  /** @type {number} */
  let port;
  /** @type {number} */
  let controllerPort;
  // (set by spawnBroker(); the cast keeps tsc from narrowing it to null after the loop)
  let child = /** @type {childProcess.ChildProcess | null} */ (null);
  /** @type {number | null | undefined} */
  let watchdogPid = null;
  /** @type {ExitInfo | null} */
  let exitInfo = null;
  let stopping = false;
  let stopped = false;
  /** @type {Promise<void>} */
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

  /**
   * @param {NodeJS.Signals} signal
   * @param {number} timeoutMs then SIGKILL
   */
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
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise((/** @type {(timedOut: boolean) => void} */ resolve) => {
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
      if (cdsArchive && fs.statSync(recorded).size > 0 && !fs.existsSync(cdsArchive)) {
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
  log(`Kafka ${version} ready at ${brokersString()} in ${startupMs} ms (pid ${/** @type {childProcess.ChildProcess} */ (child).pid}, dir ${dir})`);

  /** @type {KafkaBroker} */
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
    /** @param {{ hard?: boolean }} [restartOpts] */
    async restart(restartOpts = {}) {
      if (stopped) throw new KafkaHarnessError('Kafka harness: restart() after stop()');
      stopping = true;
      try {
        await killJvm(restartOpts.hard ? 'SIGKILL' : 'SIGTERM', stopTimeoutMs);
        const t0 = Date.now();
        spawnBroker();
        await waitUntilReady(brokersString(), { timeoutMs: startTimeoutMs, failed: failedEarly });
        log(`Kafka ${version} restarted at ${brokersString()} in ${Date.now() - t0} ms (pid ${/** @type {childProcess.ChildProcess} */ (child).pid})`);
      } finally {
        stopping = false;
      }
    },
  };
  return handle;
}

module.exports = { startJvmBroker };
