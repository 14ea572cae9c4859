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

"""Intermediate progress updates reach Cinder before the final one, always.

Cinder's remotefs driver waits for a delete until its database shows the
snapshot ``deleting`` at exactly ``90%``; an intermediate update (``deleting``
below 90 %) that reached Cinder after the final one would put it back and
leave Cinder waiting for two hours. This test puts a fault proxy between
snapdriver and a real ``cinder-api``: every intermediate update it sees is,
at random, passed on, delayed, failed with a 500 without passing it on,
cut off (the connection closed), passed on and then answered 503, or passed
on and answered only after snapdriver stopped waiting. The final update is
always passed on. Cinder's own remotefs wait loop drives each merge (fake
driver, ``[fake] operation_delay`` = 6 s), and a watcher reads Cinder's
database every 50 ms meanwhile.

For every merge the test checks, from the proxy's record and Cinder's
database:

* every intermediate update Cinder applied was applied (its answer from
  cinder-api received by the proxy) before the final update reached the
  proxy, and none arrived after it: none sent, retried or delivered later;
* each percentage was sent once (a failed update is dropped, not retried),
  below 90 %, increasing;
* the final update went through on its first attempt;
* Cinder's wait loop ended on ``deleting``/``90%``, and the database still
  shows that two seconds later;
* what Cinder showed meanwhile only went up.

``SNAPDRIVER_FAULT_SEED`` repeats a run's choices (the seed is in the
test's details).
"""

import http.client
import http.server
import json
import os
import random
import socket
import sys
import threading
import time

from testtools import content

from snapdriver.tests.functional import test_cinder_loop

OPERATION_DELAY = 6.0
PROGRESS_TIMEOUT = 1.0
FAULTS = ('pass', 'delay', 'fail', 'reset', 'applied_then_fail',
          'slow_answer')


def at_random(rng):
    """The policy of the random test: any fault, delays of 0.1-0.7 s."""
    def choose(progress):
        return rng.choice(FAULTS), rng.uniform(0.1, 0.7)
    return choose


class FaultProxy:
    """An HTTP proxy in front of cinder-api that breaks intermediate
    snapshot status updates as ``policy`` says and records what it did.

    :param policy: ``policy(progress)`` -> ``(fault, delay)`` for each
        intermediate update (called under the proxy's lock).
    """

    def __init__(self, upstream_port, policy):
        self.upstream_port = upstream_port
        self.policy = policy
        self.lock = threading.Lock()
        self.events = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _any(self):
                proxy.handle(self)
            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def endpoint(self):
        return 'http://127.0.0.1:%d/v3/%%(project_id)s' % self.port

    def updates(self, snapshot_id):
        with self.lock:
            return [e for e in self.events
                    if e['snapshot_id'] == snapshot_id]

    @staticmethod
    def _status_update(request, body):
        """(snapshot id, progress) of a status update, or None."""
        if request.command != 'POST' or not request.path.endswith('/action'):
            return None
        try:
            update = json.loads(body)['os-update_snapshot_status']
        except (ValueError, KeyError, TypeError):
            return None
        snapshot_id = request.path.rsplit('/', 2)[-2]
        return snapshot_id, update.get('progress')

    def handle(self, request):
        length = int(request.headers.get('Content-Length') or 0)
        body = request.rfile.read(length) if length else b''
        update = self._status_update(request, body)
        if update is None:
            self._answer(request, *self._forward(request, body))
            return
        snapshot_id, progress = update
        final = progress == '90%'
        with self.lock:
            fault, delay = ('pass', 0) if final else self.policy(progress)
        event = {'snapshot_id': snapshot_id, 'progress': progress,
                 'final': final, 'fault': fault, 'arrived': time.time(),
                 'applied': None}
        with self.lock:
            self.events.append(event)
        if fault == 'fail':
            self._answer(request, 500, {}, b'{"error": "injected"}')
            return
        if fault == 'reset':
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == 'delay':
            time.sleep(delay)
        status, headers, answer = self._forward(request, body)
        event['applied'] = time.time() if status < 300 else None
        if fault == 'applied_then_fail':
            self._answer(request, 503, {}, b'{"error": "injected"}')
            return
        if fault == 'slow_answer':
            time.sleep(PROGRESS_TIMEOUT * 1.5)
        try:
            self._answer(request, status, headers, answer)
        except OSError:
            pass        # snapdriver stopped waiting, as it should

    def _forward(self, request, body):
        conn = http.client.HTTPConnection('127.0.0.1', self.upstream_port,
                                          timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in ('host', 'connection')}
            conn.request(request.command, request.path, body, headers)
            response = conn.getresponse()
            return (response.status, dict(response.getheaders()),
                    response.read())
        finally:
            conn.close()

    @staticmethod
    def _answer(request, status, headers, body):
        request.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ('content-length', 'connection',
                                   'transfer-encoding', 'date', 'server'):
                request.send_header(key, value)
        request.send_header('Content-Length', str(len(body)))
        request.end_headers()
        request.wfile.write(body)


class TestCinderProgress(test_cinder_loop.CinderLoopTestCase):

    MERGES = 3

    def seed_rng(self):
        seed = int(os.environ.get('SNAPDRIVER_FAULT_SEED')
                   or random.randrange(1 << 32))
        self.addDetail('seed', content.text_content(str(seed)))
        return random.Random(seed)

    def start(self, volume, chain, policy, step=10):
        cinder = self.shared_cinder()
        proxy = FaultProxy(cinder.port, policy)
        self.addCleanup(proxy.stop)
        conf = self.reporter_conf()
        conf.update(endpoint_override=proxy.endpoint(),
                    progress_timeout=PROGRESS_TIMEOUT)
        extra = {'DEFAULT': {'status_reporter': 'cinder',
                             'progress_interval': 0.1,
                             'progress_report_step': step,
                             'progress_report_interval': 0},
                 'fake': {'operation_delay': OPERATION_DELAY},
                 'cinder': conf}
        snapdriver = self.useFixture(test_cinder_loop._Snapdriver(
            driver='fake', inventory=volume.inventory(chain),
            extra_conf=extra))
        self._attach_log_on_failure('snapdriver-api.log',
                                    snapdriver.log_text)
        return proxy, snapdriver

    def test_intermediate_updates_never_follow_the_final_one(self):
        volume = test_cinder_loop.Volume(snapshots=self.MERGES + 1)
        newest_first = list(reversed(volume.snapshots))
        chain = [volume.file(s) for s in newest_first] + [volume.base]
        proxy, snapdriver = self.start(volume, chain,
                                       at_random(self.seed_rng()))
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {s: ('available', '100%')
                                 for s in volume.snapshots})
        record = []
        for snapshot_id in volume.snapshots[:self.MERGES]:
            record.append(self.merge(side, proxy, snapdriver, volume,
                                     snapshot_id))
        self.report(record)
        faults = {e['fault'] for r in record for e in r['updates']
                  if not e['final']}
        # Over the run, the updates met faults of several kinds.
        self.assertGreater(len(faults), 2, record)

    def test_a_late_intermediate_update_holds_the_final_one(self):
        # Every 1 %; from 87 % on, each is held 0.95 s before Cinder gets
        # it (the request's timeout is 1 s): the first such one is sent at
        # 87 % or later of a 6 s job, 5.2 s in, so that it reaches Cinder
        # after the job's end. The final update must come after it.
        volume = test_cinder_loop.Volume(snapshots=2)
        chain = [volume.file(s) for s in reversed(volume.snapshots)]
        late = []

        def choose(progress):
            if int(progress[:-1]) >= 87:
                late.append(progress)
                return 'delay', 0.95
            return 'pass', 0
        proxy, snapdriver = self.start(volume, chain + [volume.base],
                                       choose, step=1)
        side = self.cinder_side(snapdriver)
        self.seed(side, volume, {s: ('available', '100%')
                                 for s in volume.snapshots})
        summary = self.merge(side, proxy, snapdriver, volume,
                             volume.snapshots[0])
        self.report([summary])
        self.assertEqual(1, len(late), summary)
        [held] = [e for e in summary['updates'] if e['fault'] == 'delay']
        job = summary['job_end']
        self.assertGreater(held['applied'], job, summary)

    def report(self, record):
        """The merges, in the details; one line each on stderr."""
        self.addDetail('merges', content.json_content(record))
        for summary in record:
            sys.stderr.write(
                'CINDER-PROGRESS snapshot=%s sent=%s final_after_job_end=%s'
                ' cinder=%s\n' % (
                    summary['snapshot_id'][:8],
                    ','.join('%s:%s' % (e['progress'], e['fault'])
                             for e in summary['updates']),
                    summary['final_after_job_end_seconds'],
                    summary['cinder_sequence']))

    def merge(self, side, proxy, snapdriver, volume, snapshot_id):
        """One commit of ``snapshot_id`` into the base, driven by Cinder's
        remotefs code; every check of the module's description."""
        side.update_snapshot(snapshot_id, 'deleting', '100%')
        watcher = side.background('watch_snapshot', {
            'snapshot_id': snapshot_id, 'seconds': OPERATION_DELAY + 6})
        answer = side.remotefs_delete(snapshot_id, {
            'type': 'qcow2', 'file_to_merge': volume.file(snapshot_id),
            'merge_target_file': volume.base, 'volume_id': volume.id},
            project_id=self.project, timeout=OPERATION_DELAY + 60)
        self.assertTrue(answer['ok'], answer)
        self.assertEqual({'status': 'deleting', 'progress': '90%'},
                         {k: answer['result']['snapshot'][k]
                          for k in ('status', 'progress')})
        operation = self.wait_delivery(snapdriver, snapshot_id)
        self.assertDelivered(operation, 'deleting')
        shown = watcher.result(timeout=OPERATION_DELAY + 30)
        self.assertTrue(shown['ok'], shown)
        shown = shown['result']

        updates = proxy.updates(snapshot_id)
        finals = [e for e in updates if e['final']]
        middles = [e for e in updates if not e['final']]
        summary = {
            'snapshot_id': snapshot_id,
            'updates': updates,
            'cinder_showed': shown,
            'job_seconds': operation['progress']['job_seconds'],
        }
        self.assertEqual(1, len(finals), summary)
        final = finals[0]
        # Sent before the final one, and applied before it: none later.
        for event in middles:
            self.assertLess(event['arrived'], final['arrived'], summary)
            if event['applied'] is not None:
                self.assertLess(event['applied'], final['arrived'], summary)
        # Once each, increasing, below 90 %.
        values = [int(e['progress'][:-1]) for e in middles]
        self.assertTrue(values, summary)
        self.assertEqual(sorted(set(values)), values, summary)
        self.assertLess(max(values), 90, summary)
        # Cinder ended on the final status and stays there.
        time.sleep(2)
        self.assertEqual({'status': 'deleting', 'progress': '90%'},
                         {k: v for k, v in side.snapshot(snapshot_id).items()
                          if k in ('status', 'progress')}, summary)
        # What Cinder showed meanwhile only went up, to 90 %.
        progress = [int(s['progress'][:-1]) for s in shown
                    if s['status'] == 'deleting']
        if progress[0] == 100:
            progress.pop(0)         # as seeded, before the merge
        self.assertEqual(sorted(progress), progress, summary)
        self.assertEqual(90, progress[-1], summary)
        self.assertGreater(len(progress), 1, summary)
        # How long the final waited after the job ended (recorded, not
        # asserted: the bound is one intermediate update's timeout).
        job_end = (test_cinder_loop._epoch(
            operation['progress']['job_started_at'])
            + operation['progress']['job_seconds'])
        summary['job_end'] = job_end
        summary['final_after_job_end_seconds'] = round(
            final['arrived'] - job_end, 3)
        summary['cinder_sequence'] = ' -> '.join(
            '%s %s' % (s['status'], s['progress']) for s in shown)
        return summary
