// @ts-check
'use strict';
// Process bookkeeping of the JVM broker, so nothing is left behind: telling our JVMs from others,
// the watchdog that stops a broker whose owner died, and reaping what dead runs left.

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { MARKER_PROPERTY, OWNER_FILE, runRoot } = require('./common');

/**
 * The process that started a broker: its pid and (Linux) its start time.
 * @typedef {{ pid: number; startTime: string | null }} Owner
 */

/**
 * @param {number | undefined} pid
 * @returns {boolean}
 */
function pidAlive(pid) {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/**
 * Start time of a process in clock ticks since boot (Linux), to tell a live pid from a reused one.
 * @param {number} pid
 * @returns {string | null}
 */
function procStartTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] || null; // field 22 of stat; fields[] starts at field 3
  } catch {
    return null;
  }
}

/**
 * @param {number} pid
 * @returns {string} its command line, arguments joined by spaces ('' when unknown)
 */
function commandLine(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    const res = childProcess.spawnSync('ps', ['-ww', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
    return res.status === 0 ? res.stdout : '';
  }
}

/**
 * True when `pid` is a JVM this harness started for `dir`.
 * @param {number} pid
 * @param {string} dir
 * @returns {boolean}
 */
function isOurJvm(pid, dir) {
  return pidAlive(pid) && commandLine(pid).includes(`-D${MARKER_PROPERTY}=${dir}`);
}

/**
 * @param {Owner | undefined} owner
 * @returns {boolean}
 */
function ownerAlive(owner) {
  if (!owner || !pidAlive(owner.pid)) return false;
  if (owner.startTime == null) return true;
  const now = procStartTime(owner.pid);
  return now == null || now === owner.startTime;
}

/**
 * Kills brokers (and removes temp dirs) left by runs whose owning process is gone, e.g. a jest run
 * killed with SIGKILL before its watchdog could act. Only touches dirs and JVMs this harness made.
 * @param {(message: string) => void} [log]
 * @returns {number} how many dirs were reaped
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
    /** @type {{ owner?: Owner; javaPid?: number; watchdogPid?: number } | null} */
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

/**
 * @param {number} ownerPid
 * @param {number | undefined} javaPid
 * @param {string} dir
 * @returns {number | undefined} the watchdog's pid (it leads its own process group)
 */
function startWatchdog(ownerPid, javaPid, dir) {
  const child = childProcess.spawn(
    '/bin/sh',
    ['-c', WATCHDOG, 'kafka-harness-watchdog', String(ownerPid), String(javaPid), `-D${MARKER_PROPERTY}=${dir}`, dir],
    { detached: true, stdio: 'ignore' },
  );
  child.unref();
  return child.pid;
}

/**
 * Signals the process group led by `pid`, else the process itself; nothing when it is gone.
 * @param {number | null | undefined} pid
 * @param {NodeJS.Signals} signal
 */
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

module.exports = { pidAlive, procStartTime, commandLine, isOurJvm, ownerAlive, reapStale, startWatchdog, killGroup };
