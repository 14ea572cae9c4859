#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Fault injection for the fault suite (``test_faults``).

What the suite breaks, and how:

* :class:`PrivateLibvirtd`: a libvirtd of the suite's own (started with
  ``tools/libvirtd-env.sh`` in a directory beside the shared one), that
  can be stopped and started again while its guests keep running. The
  shared daemon of ``tools/with-libvirtd.sh`` is not used for this: other
  test modules run against it at the same time (stestr runs one worker per
  CPU), and a restart would break their connections; and a loop-mounted
  share must be mounted in the daemon's mount namespace too, which only a
  daemon of our own can have done to it. ``libvirtd-env.sh stop`` and
  ``start`` cannot restart a daemon under running guests: both kill the
  guests they find (``start`` also removes ``run/libvirt``, where libvirt
  keeps what it needs to reconnect to them), so :meth:`PrivateLibvirtd.
  stop_daemon` and :meth:`PrivateLibvirtd.start_daemon` do the daemon
  alone, the way the script starts it.
* :class:`LoopShare`: a small ext4 file system on a loop device, mounted
  as the share in our mount namespace and in the daemon's (so that QEMU and
  qemu-img see the same file system), which :meth:`LoopShare.fill` fills
  up to a few MiB.
* SIGKILL of snapdriver-api (:class:`KillableServer`), cinder-api stopped
  (``cinder_env.CinderApiFixture.stop``) and guests destroyed mid-merge are
  done by the tests themselves.

:class:`Scenario` and :class:`OpRecord` hold what each scenario did and
saw; :func:`summary_table` turns them into the suite's final table.
"""

import datetime
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import fixtures

from snapdriver.tests.functional import server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
LIBVIRTD_ENV = os.path.join(REPO, 'tools', 'libvirtd-env.sh')
RUN_DIR = os.path.join(REPO, '.run', 'faults')
LOG_DIR = os.path.join(RUN_DIR, 'logs')
SEED_ENV = 'SNAPDRIVER_FAULT_SEED'

# The same child subreaper as tools/libvirtd-env.sh's (see that file).
_REAPER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'tools', 'subreaper.py')


def run(*cmd, check=True, timeout=60):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if check and proc.returncode:
        raise RuntimeError('%s failed (rc %d): %s'
                           % (' '.join(cmd), proc.returncode, proc.stdout))
    return proc


def suite_seed():
    """The seed of the run: ``$SNAPDRIVER_FAULT_SEED``, else a new one."""
    value = os.environ.get(SEED_ENV)
    if value:
        return int(value)
    return random.SystemRandom().randrange(1, 2 ** 31)


def rng(seed, scenario):
    """A generator of its own per scenario, so that one scenario's draws
    do not depend on which others ran before it."""
    return random.Random('%s/%s' % (seed, scenario))


# libvirtd ------------------------------------------------------------------

def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(')', 1)[1].split()[0] != 'Z'


def _libvirt():
    import libvirt
    return libvirt


class PrivateLibvirtd(fixtures.Fixture):
    """A libvirtd of its own in ``directory`` (see the module doc)."""

    START_TIMEOUT = 60

    def __init__(self, directory):
        super().__init__()
        self.directory = directory
        self._reapers = []

    def _script(self, command, check=True):
        return run(LIBVIRTD_ENV, command, self.directory, check=check,
                   timeout=self.START_TIMEOUT + 40)

    def _setUp(self):
        # Whatever a killed earlier run left behind.
        self._script('stop', check=False)
        self._script('start')
        self.addCleanup(self._stop)
        self.uri = self._script('uri').stdout.strip()
        self.pidfile = os.path.join(self.directory, 'libvirtd.pid')

    def _stop(self):
        try:
            self._script('stop')
        finally:
            for reaper in self._reapers:
                try:
                    reaper.wait(10)
                except subprocess.TimeoutExpired:
                    pass

    def pid(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None      # libvirtd removes it when it exits
        return pid if pid and _alive(pid) else None

    def running(self):
        return self.pid() is not None

    def guest_pid(self, name):
        """The PID of a running guest's QEMU, from libvirt's pidfile."""
        path = os.path.join(self.directory, 'run', 'libvirt', 'qemu',
                            name + '.pid')
        with open(path) as f:
            return int(f.read().strip())

    def stop_daemon(self, timeout=30):
        """SIGTERM libvirtd and wait until it is gone; its guests go on."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError('libvirtd in %s is not running'
                               % self.directory)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError('libvirtd (pid %d) ignored SIGTERM for '
                                   '%ss' % (pid, timeout))
            time.sleep(0.01)

    def start_daemon(self):
        """Start libvirtd again on the same directory, URI and state, the
        way libvirtd-env.sh starts it but without touching the guests: it
        reconnects to them from the state in run/libvirt."""
        if self.running():
            raise RuntimeError('libvirtd in %s is already running'
                               % self.directory)
        with open(os.path.join(self.directory, 'libvirtd.stderr'),
                  'ab') as log:
            reaper = subprocess.Popen(
                ['/usr/bin/python3', _REAPER, 'unshare', '-m',
                 '--propagation', 'private', LIBVIRTD_ENV, '__in-namespace',
                 self.directory],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        self._reapers.append(reaper)
        # libvirtd-env.sh stop waits for this one to go.
        with open(os.path.join(self.directory, 'reaper.pid'), 'w') as f:
            f.write('%d\n' % reaper.pid)
        libvirt = _libvirt()
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            try:
                conn = libvirt.open(self.uri)
                conn.getVersion()
                conn.close()
                if self.running():
                    return
            except libvirt.libvirtError:
                pass
            if reaper.poll() is not None:
                raise RuntimeError('libvirtd exited at start-up; see %s'
                                   % self.directory)
            if time.monotonic() > deadline:
                raise RuntimeError('libvirtd did not answer within %ss'
                                   % self.START_TIMEOUT)
            time.sleep(0.02)

    def nsenter(self, *cmd):
        """Run a command in the daemon's mount namespace."""
        return run('nsenter', '-t', str(self.pid()), '-m', *cmd)


# A share that fills up -------------------------------------------------------

class LoopShare(fixtures.Fixture):
    """An ext4 file system of ``size_mb`` on a loop device, mounted at
    ``path`` here and in the mount namespace of ``libvirtd``.

    Mounting one block device twice gives one file system (one superblock)
    seen through two mounts: what QEMU writes in the daemon's namespace,
    snapdriver's qemu-img and the test read in ours.
    """

    def __init__(self, parent, libvirtd, size_mb=64):
        super().__init__()
        self.parent = parent
        self.libvirtd = libvirtd
        self.size_mb = size_mb
        self.path = os.path.join(parent, 'share')
        self.image = os.path.join(parent, 'share.ext4')
        self.filler = os.path.join(self.path, 'filler')

    def _setUp(self):
        with open(self.image, 'wb') as f:
            f.truncate(self.size_mb * 1024 * 1024)
        self.addCleanup(os.unlink, self.image)
        run('mkfs.ext4', '-q', '-F', '-m', '0', '-O', '^has_journal',
            self.image)
        self.device = run('losetup', '--find', '--show',
                          self.image).stdout.strip()
        self.addCleanup(run, 'losetup', '-d', self.device)
        os.mkdir(self.path)
        run('mount', self.device, self.path)
        self.addCleanup(self._umount, lambda: run('umount', self.path))
        self.libvirtd_pid = self.libvirtd.pid()
        self.libvirtd.nsenter('mount', self.device, self.path)
        self.addCleanup(self._umount, self._umount_in_daemon)

    def _umount_in_daemon(self):
        if self.libvirtd.pid() == self.libvirtd_pid:
            self.libvirtd.nsenter('umount', self.path)
        # Else that namespace went with the daemon that had it.

    @staticmethod
    def _umount(do):
        # A guest that was just destroyed may hold its files a moment.
        for _ in range(50):
            try:
                return do()
            except RuntimeError:
                time.sleep(0.1)
        return do()

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave_bytes):
        """Allocate a file that leaves about ``leave_bytes`` free.

        :returns: the bytes free afterwards.
        """
        size = os.path.getsize(self.filler) if os.path.exists(
            self.filler) else 0
        grow = self.free_bytes() - leave_bytes
        if grow > 0:
            with open(self.filler, 'ab') as f:
                os.posix_fallocate(f.fileno(), size, grow)
        return self.free_bytes()

    def release(self):
        """Remove the filler: the space is back."""
        if os.path.exists(self.filler):
            os.unlink(self.filler)
        return self.free_bytes()


# snapdriver-api ------------------------------------------------------------

class KillableServer(server.ApiServerFixture):
    """snapdriver-api that the test may SIGKILL on purpose (the fixture
    would take any exit but 0 for a failure).

    :param keep_log: where to copy the log once the process is gone (the
        fixture's directory goes with it).
    """

    killed = False

    def __init__(self, *args, keep_log=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_log = keep_log

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(server.STOP_TIMEOUT)
        self.killed = True
        self._keep_log()

    def _stop(self):
        try:
            if not self.killed:
                super()._stop()
        finally:
            self._keep_log()

    def _keep_log(self):
        if self.keep_log:
            os.makedirs(os.path.dirname(self.keep_log), exist_ok=True)
            shutil.copyfile(self.log_path, self.keep_log)


def journal_rows(path):
    """The journal as a killed snapdriver left it: ``{(snapshot id,
    'create'|'delete'): [(state, delivery), ...]}`` (oldest first)."""
    if not os.path.exists(path):
        return {}
    conn = sqlite3.connect(path, timeout=10)
    try:
        rows = conn.execute('SELECT snapshot_id, kind, state, delivery '
                            'FROM operations ORDER BY seq').fetchall()
    except sqlite3.OperationalError:
        return {}       # killed before the schema was written
    finally:
        conn.close()
    found = {}
    for snapshot_id, kind, state, delivery in rows:
        key = (snapshot_id, 'create' if kind == 'create' else 'delete')
        found.setdefault(key, []).append((state, delivery))
    return found


def phase_of(rows):
    """How far an operation got, in words, from its journal rows."""
    if not rows:
        return 'not journalled'
    state, delivery = rows[-1]
    if state in ('queued', 'running'):
        return state
    return '%s, report %s' % (state, delivery or 'none')


# Timelines and results ------------------------------------------------------

def parse_utc(text):
    """snapdriver's ``...Z`` timestamps as epoch seconds."""
    if not text:
        return None
    moment = datetime.datetime.fromisoformat(text.rstrip('Z'))
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


class Timeline:
    """Events of a scenario, in wall-clock time (shown relative to the
    first)."""

    def __init__(self):
        self.events = []

    def mark(self, what, at=None):
        self.events.append((time.time() if at is None else at, what))

    def mark_utc(self, what, utc_text):
        at = parse_utc(utc_text)
        if at is not None:
            self.mark(what, at)

    def first(self, prefix):
        for at, what in sorted(self.events):
            if what.startswith(prefix):
                return at
        return None

    def text(self):
        if not self.events:
            return '(nothing happened)\n'
        events = sorted(self.events, key=lambda e: e[0])
        start = events[0][0]
        return ''.join('%+9.3f s  %s\n' % (at - start, what)
                       for at, what in events)


class OpRecord:
    """One operation of a scenario: what was asked, what was done to it,
    and what came of it."""

    def __init__(self, label, volume, snapshot_id, kind, expect_state,
                 expect_status):
        self.label = label
        self.volume = volume
        self.snapshot_id = snapshot_id
        self.kind = kind                    # create, commit, pull
        self.expect_state = expect_state    # succeeded, failed
        self.expect_status = expect_status  # what Cinder must show
        self.faults = []
        self.state = None
        self.error = None
        self.delivery = None
        self.attempts = None
        self.rows = None
        self.cinder = None
        self.data = None                    # None: not checked yet
        self.notes = []

    @property
    def lost(self):
        return not (self.cinder == '%s/90%%' % self.expect_status
                    and self.delivery == 'delivered')

    @property
    def mismatch(self):
        return self.data != 'ok'

    @property
    def unexpected(self):
        return self.state != self.expect_state or self.rows != 1

    def row(self):
        error = (self.error or '')
        if len(error) > 160:
            error = error[:157] + '...'
        return [self.label, self.volume, self.snapshot_id[:8], self.kind,
                '; '.join(self.faults) or '-',
                '%s%s' % (self.state, '' if self.rows == 1
                          else ' (%s rows)' % self.rows),
                self.cinder or '-', '%s (%s)' % (self.delivery,
                                                 self.attempts),
                self.data or '-', error or '-']


OP_HEADER = ['op', 'volume', 'snapshot', 'kind', 'fault',
             'snapdriver state', "Cinder's DB", 'report (attempts)', 'data',
             'error']


class Scenario:
    """What a scenario did: its operations, faults and timeline."""

    def __init__(self, key, title):
        self.key = key
        self.title = title
        self.ops = []
        self.faults = []
        self.timeline = Timeline()
        self.notes = []
        self.started = time.monotonic()
        self.seconds = None
        self.completed = False

    def op(self, *args, **kwargs):
        record = OpRecord(*args, **kwargs)
        self.ops.append(record)
        return record

    def fault(self, what, at=None):
        self.faults.append(what)
        self.timeline.mark('FAULT: ' + what, at)

    def finish(self):
        self.seconds = time.monotonic() - self.started
        self.completed = True

    @property
    def lost(self):
        return sum(op.lost for op in self.ops)

    @property
    def mismatches(self):
        return sum(op.mismatch for op in self.ops)

    @property
    def unexpected(self):
        return sum(op.unexpected for op in self.ops)

    def ops_table(self):
        return markdown_table(OP_HEADER, [op.row() for op in self.ops])

    def report(self):
        """Everything about the scenario, as Markdown."""
        parts = ['## %s. %s\n' % (self.key, self.title)]
        if self.notes:
            parts.append(''.join('- %s\n' % n for n in self.notes))
        parts.append('\n' + self.ops_table())
        notes = ['- %s: %s\n' % (op.label, '; '.join(op.notes))
                 for op in self.ops if op.notes]
        if notes:
            parts.append('Notes on operations:\n\n' + ''.join(notes))
        parts.append('\nTimeline:\n\n```\n%s```\n' % self.timeline.text())
        return '\n'.join(parts)


def markdown_table(header, rows):
    rows = [[str(c).replace('|', '\\|').replace('\n', ' ') for c in row]
            for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows
              else len(str(h)) for i, h in enumerate(header)]
    line = lambda cells: '| %s |\n' % ' | '.join(   # noqa: E731
        c.ljust(w) for c, w in zip(cells, widths))
    return (line(header) + line(['-' * w for w in widths])
            + ''.join(line(r) for r in rows))


SUMMARY_HEADER = ['scenario', 'operations', 'faults injected',
                  'reports lost (goal 0)', 'data mismatches (goal 0)',
                  'unexpected outcomes', 'seconds']


def summary_table(scenarios, expected):
    """The final table: one row per scenario of ``expected`` (key, title);
    a scenario that did not complete says so."""
    rows = []
    totals = [0, 0, 0, 0, 0]
    for key, title in expected:
        s = scenarios.get(key)
        name = '%s. %s' % (key, title)
        if s is None:
            rows.append([name, 'not run', '', '', '', '', ''])
            continue
        cells = [len(s.ops), len(s.faults), s.lost, s.mismatches,
                 s.unexpected]
        totals = [t + c for t, c in zip(totals, cells)]
        rows.append([name if s.completed else name + ' (INCOMPLETE)']
                    + cells + ['%.1f' % (s.seconds or
                                         time.monotonic() - s.started)])
    rows.append(['total'] + totals + [''])
    return markdown_table(SUMMARY_HEADER, rows)


def write_summary(text):
    os.makedirs(RUN_DIR, exist_ok=True)
    path = os.path.join(RUN_DIR, 'summary.md')
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
    return path


def say(text):
    sys.stderr.write(text if text.endswith('\n') else text + '\n')
    sys.stderr.flush()
