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

"""The API alone, under load: snapdriver-api with the fake driver, noauth
and the log status reporter, loaded by wrk on loopback.

Two requests: a create (POST, a unique snapshot id and overlay name each
time, spread over many volumes so that no chain grows long) and the GET of
one operation. Each at 1 connection (latency) and 8 connections
(throughput). The fake driver does the accepted work in the background, as
the libvirt driver would, so that work competes with the API as it would.
One more row runs the creates with ``[database] sqlite_synchronous =
true`` (SQLite's FULL: an fsync per journal commit), the durability an
operator may choose instead of the default (NORMAL).
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench import common
from bench.common import verdict
from bench import targets

VOLUMES = 250
_seeds = itertools.count(1)

_DONE = r'''
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
'''

_POST = r'''
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local headers = {["Content-Type"] = "application/json",
                 ["X-Auth-Token"] = "%(token)s"}
function request()
  counter = counter + 1
  local sid = string.format("%(prefix)s-%%d-%%d", tid, counter)
  local vol = string.format("bench-vol-%%04d",
                            (counter * 7 + tid) %% %(volumes)d)
  local body = '{"snapshot": {"volume_id": "' .. vol ..
    '", "create_info": {"snapshot_id": "' .. sid ..
    '", "type": "qcow2", "new_file": "volume-' .. vol .. '.' .. sid .. '"}}}'
  return wrk.format("POST", "/v2.1/os-assisted-volume-snapshots", headers,
                    body)
end
'''

_GET = r'''
local headers = {["X-Auth-Token"] = "%(token)s"}
local req = wrk.format("GET", "/v2.1/os-assisted-volume-snapshots/%(sid)s",
                       headers)
function request()
  return req
end
'''


def _inventory(directory):
    guests = []
    for i in range(VOLUMES):
        guests.append({
            'name': 'bench-vm-%04d' % i, 'state': 'running',
            'disks': [
                {'target': 'vda', 'serial': 'root-%04d' % i,
                 'directory': '/var/lib/nova/instances/%04d' % i,
                 'chain': ['disk']},
                {'target': 'vdb', 'serial': 'bench-vol-%04d' % i,
                 'directory': '/mnt/cinder/share',
                 'chain': ['volume-bench-vol-%04d' % i]}]})
    path = os.path.join(directory, 'inventory.json')
    with open(path, 'w') as f:
        json.dump({'guests': guests}, f)
    return path


def _wrk(port, script, connections, duration):
    threads = min(2, connections)
    with tempfile.NamedTemporaryFile('w', suffix='.lua', delete=False) as f:
        f.write(script + _DONE)
        path = f.name
    try:
        proc = common.run(
            'wrk', '-t%d' % threads, '-c%d' % connections,
            '-d%ds' % duration, '--timeout', '10s', '-s', path,
            'http://127.0.0.1:%d' % port, timeout=duration + 60)
    finally:
        os.unlink(path)
    for line in proc.stdout.splitlines():
        if line.startswith('BENCH-JSON '):
            return json.loads(line[len('BENCH-JSON '):])
    raise common.BenchError('wrk printed no result: %s%s'
                            % (proc.stdout, proc.stderr))


class _Profiler:
    """py-spy recording snapdriver-api while a load runs, if installed.

    :param gil: sample only the thread holding the GIL (where the CPU
        goes) instead of every thread that is not idle (where the time
        goes, waits for locks and fsync included).
    """

    def __init__(self, pid, out_path, duration, gil=False):
        self.path = out_path
        exe = shutil.which('py-spy') or os.path.join(
            os.path.dirname(sys.executable), 'py-spy')
        self.proc = None
        if os.access(exe, os.X_OK):
            self.proc = subprocess.Popen(
                [exe, 'record', '--pid', str(pid), '--duration',
                 str(duration), '--rate', '250', '--format', 'raw',
                 '--threads', '--nonblocking', '--output', out_path]
                + (['--gil'] if gil else []),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)

    def finish(self):
        if self.proc is None:
            return None
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None
        return self.path if os.path.exists(self.path) else None


def _lock_lines():
    """Lines of the journal where a writer takes its lock and opens a
    transaction (``with self._lock, self.engine.begin()``)."""
    from snapdriver.operations import journal
    with open(journal.__file__) as f:
        return {i for i, line in enumerate(f, 1)
                if line.strip().startswith('with self._lock')}


def _parse_frame(frame):
    """py-spy raw frame "function (path/file.py:line)" ->
    (function, path, line)."""
    name, _, where = frame.partition(' (')
    path, _, line = where.rstrip(')').rpartition(':')
    return name, path, int(line) if line.isdigit() else 0


def _short(name, path, line=None):
    where = '/'.join(path.split('/')[-2:])
    return '%s (%s%s)' % (name, where, ':%d' % line if line else '')


CATEGORIES = (
    'journal: SQLite COMMIT (do_commit)',
    'journal: writers\' lock + begin/commit '
    '(`with self._lock, engine.begin()`)',
    'journal: SQLAlchemy queries and results',
    'API: Pecan, WebOb, middleware, validation, policy',
    'HTTP server (waitress)',
    'logging',
    'driver (fake) and chain rules',
    'other (thread pools, uuid, ...)',
)


def _category(frames, lock_lines):
    name, path, line = frames[-1]
    if name.endswith('do_commit'):
        return CATEGORIES[0]
    if path.endswith('operations/journal.py') and line in lock_lines:
        return CATEGORIES[1]
    paths = [p for _, p, _ in frames]
    if any('sqlalchemy/' in p for p in paths):
        return CATEGORIES[2]
    if any('/logging/' in p or 'oslo_log/' in p for p in paths):
        return CATEGORIES[5]
    if any('snapdriver/drivers/' in p or p.endswith('snapdriver/chain.py')
           for p in paths):
        return CATEGORIES[6]
    if any('/pecan/' in p or '/webob/' in p or '/jsonschema/' in p
           or '/oslo_policy/' in p or '/oslo_middleware/' in p
           or 'snapdriver/api/' in p for p in paths):
        return CATEGORIES[3]
    if any('/waitress/' in p or 'wsgiref/' in p for p in paths):
        return CATEGORIES[4]
    return CATEGORIES[7]


def _read_profile(path):
    lock_lines = _lock_lines()
    categories, own, total = {}, {}, 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip('\n').rpartition(' ')
            if not stack or not count.isdigit():
                continue
            frames = [_parse_frame(fr) for fr in stack.split(';')[1:]]
            if not frames:
                continue
            count = int(count)
            total += count
            cat = _category(frames, lock_lines)
            categories[cat] = categories.get(cat, 0) + count
            leaf = _short(*frames[-1])
            own[leaf] = own.get(leaf, 0) + count
    return categories, own, total


def profile_table(wall_path, gil_path, top=10):
    """Where snapdriver-api's time and CPU went under the POST load."""
    wall = _read_profile(wall_path)
    gil = _read_profile(gil_path)

    def pct(part, whole):
        return '%.1f' % (100.0 * part / whole) if whole else 'n/a'
    table = common.Table(
        '4b. Profile of snapdriver-api (as it is) under POST create load, '
        '8 connections (py-spy; %d samples of non-idle threads, %d samples '
        'of the thread holding the GIL)' % (wall[2], gil[2]),
        ['where', 'time: non-idle threads %', 'CPU: GIL holder %'])
    for cat in CATEGORIES:
        table.add(cat, pct(wall[0].get(cat, 0), wall[2]),
                  pct(gil[0].get(cat, 0), gil[2]))
    for label, (_, own, total), col in (('time', wall, 1), ('CPU', gil, 2)):
        for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
            cells = ['%s, top line: %s' % (label, name), '', '']
            cells[col] = pct(n, total)
            table.add(*cells)
    table.note('py-spy attributes a C call (SQLite, a lock wait) to the '
               'Python line that made it; threads blocked in accept, a '
               'socket read or a condition wait count as idle.')
    return table


def _post(prefix):
    return _POST % {'token': common.TOKEN, 'volumes': VOLUMES,
                    'prefix': prefix}


def _get(sd):
    """A GET script for an operation created now: older ones may have
    been trimmed from the journal ([DEFAULT] operation_history)."""
    snapshot_id = 'api-seed-%d' % next(_seeds)
    volume = 'bench-vol-%04d' % (VOLUMES - 1)
    status, body = sd.call('POST', '/os-assisted-volume-snapshots', {
        'snapshot': {'volume_id': volume, 'create_info': {
            'snapshot_id': snapshot_id, 'type': 'qcow2',
            'new_file': 'volume-%s.%s' % (volume, snapshot_id)}}})
    if status != 200:
        raise common.BenchError('seed create: %s %s' % (status, body))
    sd.settled(snapshot_id)
    script = _GET % {'token': common.TOKEN, 'sid': snapshot_id}
    return lambda prefix: script


def _start(work, name, database=None):
    conf = {'DEFAULT': {'driver': 'fake', 'status_reporter': 'log'},
            'fake': {'inventory_file': _inventory(work),
                     'assume_overlays': 'true'}}
    if database:
        conf['database'] = database
    return common.Snapdriver(work, name, conf).start()


def _row(table, sd, label, make_script, connections, duration, tag):
    """Warm up for 1 s, then load for ``duration``; add a table row.

    :returns: wrk's result, with ``rps`` added.
    """
    _wrk(sd.port, make_script('warm-' + tag), connections, 1)
    # The CPU of the requests sent in this row, the background work they
    # started (the fake driver's operation, the report) included: from an
    # idle server to an idle server again.
    common.wait_idle(sd.pid)
    cpu0 = common.cpu_seconds(sd.pid)
    result = _wrk(sd.port, make_script(tag), connections, duration)
    common.wait_idle(sd.pid)
    cpu = common.cpu_seconds(sd.pid) - cpu0
    result['cpu_ms_per_req'] = 1000.0 * cpu / max(result['requests'], 1)
    result['rps'] = rps = result['requests'] / (result['duration_us'] / 1e6)
    result['errors'] = errors = (
        result['status'] + result['connect'] + result['read']
        + result['write'] + result['timeout'])
    table.add(label, connections, '%.0f' % rps,
              '%.1f' % (result['p50_us'] / 1000.0),
              '%.1f' % (result['p90_us'] / 1000.0),
              '%.1f' % (result['p99_us'] / 1000.0),
              '%.1f' % (result['max_us'] / 1000.0), errors,
              '%.2f' % result['cpu_ms_per_req'],
              '%.0f' % common.rss_mib(sd.pid))
    return result


def bench_api(work, sizes, profile=False):
    if not shutil.which('wrk'):
        table = common.Table('4. API alone', ['note'])
        table.add('wrk is not installed (apt-get install wrk); skipped')
        return [table], {}
    duration = sizes['api_seconds']
    raw = {}
    table = common.Table(
        '4. API alone: snapdriver-api (console script, waitress), '
        'fake driver, noauth, log reporter; wrk on loopback, %d s per row'
        % duration,
        ['request', 'connections', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms',
         'max ms', 'errors (non-2xx, socket)', 'server CPU ms/req',
         'RSS after MiB'])
    tables = [table]
    sd = _start(work, 'api-fake')
    try:
        rss_before = common.rss_mib(sd.pid)
        scenarios = [('POST create', 1), ('POST create', 8),
                     ('GET operation', 1), ('GET operation', 8)]
        verdicts = []
        for n, (label, connections) in enumerate(scenarios):
            make_script = _post if label.startswith('POST') else _get(sd)
            result = _row(table, sd, label, make_script, connections,
                          duration, 'api%d' % n)
            raw['%s c=%d' % (label, connections)] = result
            if connections == 8:
                invalid = (' (%d failed requests: not valid)'
                           % result['errors'] if result['errors'] else '')
                if label.startswith('POST'):
                    verdicts.append(
                        '%s: %.0f creates/s (>= %d: %s), server CPU %.2f ms '
                        'per create (<= %g ms: %s)%s' % (
                            label, result['rps'], targets.CREATES_PER_S,
                            verdict(result['rps'] >= targets.CREATES_PER_S),
                            result['cpu_ms_per_req'],
                            targets.CPU_MS_PER_CREATE,
                            verdict(result['cpu_ms_per_req']
                                    <= targets.CPU_MS_PER_CREATE), invalid))
                else:
                    verdicts.append('%s: p99 %.1f ms (<= %g ms: %s)%s' % (
                        label, result['p99_us'] / 1000.0, targets.GET_P99_MS,
                        verdict(result['p99_us'] <= targets.GET_P99_MS * 1000),
                        invalid))
        table.note('RSS of snapdriver-api: %.0f MiB after start-up, %.0f MiB '
                   'after all rows. Targets at 8 connections: %s. wrk runs '
                   'on the same 2 CPUs as the server and takes part of them. '
                   '"server CPU ms/req": the CPU time of snapdriver-api from '
                   'idle before the row to idle after it (the background '
                   'work of the creates and their reports included), per '
                   'request.'
                   % (rss_before, common.rss_mib(sd.pid),
                      '; '.join(verdicts)))
        if profile:
            paths = []
            for gil in (False, True):
                out = os.path.join(work, 'api-profile-%s.txt'
                                   % ('gil' if gil else 'wall'))
                profiler = _Profiler(sd.pid, out, duration, gil)
                if profiler.proc is None:
                    print('py-spy is not installed; no profile')
                    break
                time.sleep(0.5)
                _wrk(sd.port, _post('prof%d' % gil), 8, duration)
                paths.append(profiler.finish())
            if len(paths) == 2 and all(paths):
                tables.append(profile_table(*paths))
                raw['profile_files'] = paths
    finally:
        sd.stop()
    # Not a what-if: an option of the service ([database]
    # sqlite_synchronous), whose cost an operator may want to know.
    sd = _start(work, 'api-fake-full', {'sqlite_synchronous': 'true'})
    try:
        raw['POST create c=8 sqlite_synchronous=FULL'] = _row(
            table, sd, 'POST create, `sqlite_synchronous = true` (FULL)',
            _post, 8, duration, 'full')
    finally:
        sd.stop()
    table.note('The journal runs with `[database] sqlite_synchronous = '
               'false` (the default, SQLite NORMAL) in every row but the '
               'last, which uses true (FULL: an fsync per journal commit; '
               'its own server and journal).')
    return tables, {'api': raw}
