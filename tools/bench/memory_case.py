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

"""Resident memory of snapdriver-api over many operations.

snapdriver-api with the fake driver, as in the API benchmark (noauth, log
status reporter, the same inventory of 250 volumes, overlays assumed).
A few client threads (http.client, one connection per request, as
Cinder's compute client) send operations, each thread on volumes of its
own, in turn: on each volume a create (a new overlay on top) and then a
delete that pulls the image below into it (``merge_target_file`` null,
``file_to_merge`` null: the chain back to one image), so chains never
grow. Before the next operation on a volume the thread GETs the previous
one until it is finished and its report delivered (one operation at a
time per volume, as Cinder does; by then it usually is).

After a warm-up, then after N and after 2N operations (creates and
deletes; the GETs are not counted), the benchmark waits until every
operation sent is finished and reported and the process uses no more CPU,
then reads VmRSS and VmHWM from /proc/<pid>/status.
"""

import concurrent.futures
import json
import os
import time
import urllib.parse

from bench import api_case
from bench import common
from bench.common import verdict
from bench import targets

THREADS = 4
WARMUP = 100

_FINISHED = ('succeeded', 'failed')


def _status_kib(pid):
    """VmRSS and VmHWM of ``pid``, in KiB."""
    values = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                values[key] = int(rest.split()[0])
    return values['VmRSS'], values['VmHWM']


def _journal_bytes(path):
    """Size of the SQLite journal with its -wal and -shm files."""
    return sum(os.path.getsize(p) for p in
               (path, path + '-wal', path + '-shm') if os.path.exists(p))


class _Volume:
    """One volume as a client thread drives it."""

    def __init__(self, volume_id):
        self.volume_id = volume_id
        self.active = 'volume-%s' % volume_id
        self.last = None        # snapshot id of the last operation sent
        self.creates = 0
        self.next = 'create'


class _Client:
    """Operations on some volumes, one at a time per volume."""

    def __init__(self, sd, tag, volumes):
        self.sd = sd
        self.tag = tag
        self.volumes = [_Volume(v) for v in volumes]
        self.turn = 0
        self.sent = 0
        self.gets = 0

    def _settle(self, volume, timeout=60):
        """Wait until the last operation of ``volume`` is finished and its
        report delivered."""
        if volume.last is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            self.gets += 1
            status, body = self.sd.call(
                'GET', '/os-assisted-volume-snapshots/%s' % volume.last)
            if status == 404:
                # Finished and trimmed from the journal already
                # ([DEFAULT] operation_history).
                break
            if status != 200:
                raise common.BenchError('GET %s: %s %s'
                                        % (volume.last, status, body))
            ops = body['operations']
            op = ops[-1] if ops else None
            if op and op['state'] in _FINISHED and \
                    op['status_report']['delivery'] not in (None, 'pending'):
                if op['state'] != 'succeeded':
                    raise common.BenchError('%s of %s failed: %s' % (
                        op['kind'], volume.last, op['error']))
                break
            if time.monotonic() > deadline:
                raise common.BenchError('operation %s not finished within '
                                        '%d s' % (volume.last, timeout))
            time.sleep(0.005)
        volume.last = None

    def _create(self, volume):
        volume.creates += 1
        snapshot_id = 'mem-%s-%s-%d' % (self.tag, volume.volume_id,
                                        volume.creates)
        new_file = 'volume-%s.%s' % (volume.volume_id, snapshot_id)
        status, body = self.sd.call('POST', '/os-assisted-volume-snapshots', {
            'snapshot': {'volume_id': volume.volume_id, 'create_info': {
                'snapshot_id': snapshot_id, 'type': 'qcow2',
                'new_file': new_file}}})
        if status != 200:
            raise common.BenchError('POST create on %s: %s %s'
                                    % (volume.volume_id, status, body))
        volume.active = new_file
        volume.last = snapshot_id

    def _pull(self, volume):
        """Pull everything below the active image into it: the chain is
        one image again."""
        snapshot_id = 'mem-%s-%s-%d-del' % (self.tag, volume.volume_id,
                                            volume.creates)
        info = {'volume_id': volume.volume_id, 'type': 'qcow2',
                'file_to_merge': None, 'merge_target_file': None}
        status, body = self.sd.call(
            'DELETE', '/os-assisted-volume-snapshots/%s?delete_info=%s'
            % (snapshot_id, urllib.parse.quote(json.dumps(info))))
        if status != 204:
            raise common.BenchError('DELETE (pull) on %s: %s %s'
                                    % (volume.volume_id, status, body))
        volume.last = snapshot_id

    def run(self, count):
        """Send ``count`` operations, on the volumes in turn."""
        for _ in range(count):
            volume = self.volumes[self.turn % len(self.volumes)]
            self.turn += 1
            self._settle(volume)
            # A create on a one-image chain, a pull on a two-image one.
            if volume.next == 'create':
                self._create(volume)
                volume.next = 'pull'
            else:
                self._pull(volume)
                volume.next = 'create'
            self.sent += 1

    def settle_all(self):
        for volume in self.volumes:
            self._settle(volume)


def _clients(sd, tag):
    volumes = ['bench-vol-%04d' % i for i in range(api_case.VOLUMES)]
    return [_Client(sd, tag, volumes[t::THREADS]) for t in range(THREADS)]


def _send(clients, count):
    """``count`` operations spread over the clients, in parallel; then
    wait until all of them are finished and reported."""
    shares = [count // len(clients) + (1 if t < count % len(clients) else 0)
              for t in range(len(clients))]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(lambda cs: cs[0].run(cs[1]), zip(clients, shares)))
        list(pool.map(lambda c: c.settle_all(), clients))
    return time.monotonic() - t0


def bench_memory(work, sizes):
    n = sizes['memory_operations']
    sd = api_case._start(work, 'memory')
    journal = os.path.join(work, 'memory.sqlite')
    points = []
    try:
        def read(label, sent, seconds):
            common.wait_idle(sd.pid)
            rss, hwm = _status_kib(sd.pid)
            points.append({'point': label, 'operations': sent,
                           'seconds': seconds, 'rss_kib': rss,
                           'hwm_kib': hwm,
                           'journal_bytes': _journal_bytes(journal),
                           'cpu_s': common.cpu_seconds(sd.pid)})
        read('after start-up', 0, 0.0)
        clients = _clients(sd, 'm')
        read('after warm-up (start)', WARMUP, _send(clients, WARMUP))
        read('after %d' % n, WARMUP + n, _send(clients, n))
        read('after %d' % (2 * n), WARMUP + 2 * n, _send(clients, n))
        gets = sum(c.gets for c in clients)
    finally:
        sd.stop()

    def mib(kib):
        return kib / 1024.0
    start, first, second = points[1], points[2], points[3]
    growth = mib(second['rss_kib'] - first['rss_kib'])
    growth_pct = 100.0 * growth / mib(first['rss_kib'])
    rss_ok = mib(first['rss_kib']) <= targets.RSS_MIB
    growth_ok = growth_pct < 100.0 * targets.RSS_GROWTH
    table = common.Table(
        'M. Resident memory of snapdriver-api (fake driver, as table 4) '
        'over %d + %d operations (creates and pulls, %d client threads)'
        % (n, n, THREADS),
        ['point', 'operations sent', 'seconds', 'ops/s', 'VmRSS MiB',
         'VmHWM MiB', 'journal (SQLite + WAL) MiB',
         'server CPU ms/op (its GETs included)'])
    prev = None
    for p in points:
        ops = p['operations'] - (prev['operations'] if prev else 0)
        cpu = p['cpu_s'] - (prev['cpu_s'] if prev else 0)
        table.add(p['point'], p['operations'],
                  '%.1f' % p['seconds'],
                  '%.0f' % (ops / p['seconds']) if p['seconds'] else '',
                  '%.1f' % mib(p['rss_kib']), '%.1f' % mib(p['hwm_kib']),
                  '%.2f' % (p['journal_bytes'] / common.MiB),
                  '%.2f' % (1000.0 * cpu / ops) if prev and ops else '')
        prev = p
    table.note(
        'RSS after %d operations (counted from the warm-up of %d): **%.1f '
        'MiB** (target <= %.0f MiB: %s); growth over the second %d: '
        '**%+.1f MiB, %+.1f %%** (target "no growth", taken as less than '
        '%.0f %% of the RSS after the first %d: %s). Each row is read when '
        'every operation sent is finished and its report delivered and '
        'the process has gone quiet (under %.0f ms of CPU in 0.5 s). '
        'Operations alternate on each volume between a create and a pull '
        'of everything below the new overlay into it, so chains stay at '
        'one or two images; the clients GET the previous operation of a '
        'volume before the next one (%d GETs, not counted); the journal '
        'keeps the last `[DEFAULT] operation_history` (1000) finished '
        'operations.' % (
            n, WARMUP, mib(first['rss_kib']), targets.RSS_MIB,
            verdict(rss_ok), n, growth, growth_pct,
            100 * targets.RSS_GROWTH, n,
            verdict(growth_ok), 20, gets))
    return [table], {'memory': {
        'points': points, 'operations': n, 'warmup': WARMUP,
        'threads': THREADS, 'gets': gets,
        'rss_start_mib': mib(start['rss_kib']),
        'rss_first_mib': mib(first['rss_kib']),
        'rss_second_mib': mib(second['rss_kib']),
        'growth_mib': growth, 'growth_pct': growth_pct}}
