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

"""The Cinder status reporter against an HTTP stand-in for Cinder."""

import http.server
import json
import os
import socket
import threading
import time

import fixtures
from keystoneauth1 import loading as ks_loading

from snapdriver import context
from snapdriver.drivers import fake
from snapdriver import exception
from snapdriver import objects
from snapdriver.operations import cinder
from snapdriver.operations import journal as journal_mod
from snapdriver.operations import manager as manager_mod
from snapdriver.tests import base


class _Cinder(http.server.ThreadingHTTPServer):
    """Answers each snapshot action with the next status of ``answers``."""

    def __init__(self, answers):
        super().__init__(('127.0.0.1', 0), _Handler)
        self.answers = list(answers)
        self.requests = []


class _Handler(http.server.BaseHTTPRequestHandler):

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = json.loads(self.rfile.read(length) or b'null')
        self.server.requests.append(
            (self.path, self.headers.get('X-Auth-Token'), body))
        status = self.server.answers.pop(0) if self.server.answers else 202
        payload = b''
        if status >= 400:
            payload = json.dumps({'badRequest': {
                'code': status, 'message': 'nope %d' % status}}).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


CALLER = context.RequestContext(user_id='u', project_id='caller-project',
                                auth_token='caller-token')


class _StandInTestCase(base.TestCase):

    def _cinder(self, *answers):
        server = _Cinder(answers)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.conf.config(
            group='cinder', report_initial_backoff=0.01,
            report_max_backoff=0.02, report_deadline=5,
            endpoint_override='http://127.0.0.1:%d/v3/%%(project_id)s'
            % server.server_address[1])
        return server

    def _service_credentials(self, auth_url):
        self.conf.register_opts(
            ks_loading.get_auth_plugin_conf_options('password'),
            group='cinder')
        self.conf.config(group='cinder', auth_type='password',
                         auth_url=auth_url, username='snapdriver',
                         password='secret', project_name='service',
                         user_domain_name='Default',
                         project_domain_name='Default')


class TestCinderReporter(_StandInTestCase):

    def test_delivers_exactly_what_cinder_waits_for(self):
        server = self._cinder(202)
        delivery = cinder.CinderReporter().report(CALLER, 'snap-1',
                                                  'creating')
        self.assertEqual(('delivered', 1),
                         (delivery.state, delivery.attempts))
        [(path, token, body)] = server.requests
        self.assertEqual('/v3/caller-project/snapshots/snap-1/action', path)
        self.assertEqual('caller-token', token)
        self.assertEqual({'os-update_snapshot_status': {
            'status': 'creating', 'progress': '90%'}}, body)

    def test_transient_failures_are_retried_and_visible(self):
        server = self._cinder(503, 500, 429, 202)
        seen = []
        delivery = cinder.CinderReporter().report(
            CALLER, 's', 'deleting',
            on_retry=lambda attempt, reason: seen.append((attempt, reason)))
        self.assertEqual(('delivered', 4),
                         (delivery.state, delivery.attempts))
        self.assertEqual([1, 2, 3], [attempt for attempt, _ in seen])
        self.assertIn('503', seen[0][1])
        self.assertEqual(4, len(server.requests))

    def test_a_refusal_is_not_retried(self):
        server = self._cinder(400)
        delivery = cinder.CinderReporter().report(CALLER, 's', 'deleting')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('Cinder refused it: 400 nope 400', delivery.detail)
        self.assertEqual(1, len(server.requests))

    def test_an_expired_caller_token_is_not_retried(self):
        server = self._cinder(401)
        delivery = cinder.CinderReporter().report(CALLER, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertEqual(1, len(server.requests))

    def test_gives_up_at_the_deadline(self):
        self._cinder(*([503] * 1000))
        self.conf.config(group='cinder', report_deadline=1)
        delivery = cinder.CinderReporter().report(CALLER, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('gave up after', delivery.detail)
        self.assertGreater(delivery.attempts, 1)

    def test_unreachable_cinder_is_retried(self):
        self.conf.config(group='cinder', report_initial_backoff=0.01,
                         report_max_backoff=0.02, report_deadline=1,
                         endpoint_override='http://127.0.0.1:9/v3')
        delivery = cinder.CinderReporter().report(CALLER, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('ConnectFailure', delivery.detail)

    def test_the_callers_token_is_needed_only_without_credentials(self):
        self._cinder()
        self.assertTrue(cinder.CinderReporter().uses_caller_token)
        self._service_credentials('http://127.0.0.1:9/v3')
        self.assertFalse(cinder.CinderReporter().uses_caller_token)

    def test_a_tls_failure_is_retried(self):
        # https to a server that speaks plain HTTP: the handshake fails.
        server = self._cinder()
        self.conf.config(group='cinder', report_deadline=1,
                         endpoint_override='https://127.0.0.1:%d/v3'
                         % server.server_address[1])
        delivery = cinder.CinderReporter().report(CALLER, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('gave up after', delivery.detail)
        self.assertIn('SSLError', delivery.detail)
        self.assertGreater(delivery.attempts, 1)

    def test_no_credentials_at_all(self):
        self._cinder()
        delivery = cinder.CinderReporter().report(None, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('[cinder] auth_type', delivery.detail)


class _Keystone(http.server.ThreadingHTTPServer):
    """Keystone's v3 API, enough for the password plugin: the version
    document, and a token for each POST to /v3/auth/tokens once the
    failures in ``answers`` are used up (a status code, or 'drop' to close
    the connection without an answer). The catalog has one Cinder v3
    endpoint, at ``cinder_url``.

    Made bound but not listening: connections are refused until
    :meth:`start`.
    """

    def __init__(self, cinder_url, answers=()):
        super().__init__(('127.0.0.1', 0), _KeystoneHandler,
                         bind_and_activate=False)
        self.server_bind()
        self.cinder_url = cinder_url
        self.answers = list(answers)
        self.token_requests = []
        self.url = 'http://127.0.0.1:%d/v3' % self.server_address[1]

    def start(self):
        self.server_activate()
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _KeystoneHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def _answer(self, status, body, headers=()):
        payload = json.dumps(body).encode()
        self.send_response(status)
        for header in headers:
            self.send_header(*header)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._answer(200, {'version': {
            'id': 'v3.14', 'status': 'stable', 'media-types': [],
            'links': [{'rel': 'self', 'href': self.server.url + '/'}]}})

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.rfile.read(length)
        answer = self.server.answers.pop(0) if self.server.answers else 201
        self.server.token_requests.append(answer)
        if answer == 'drop':
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if answer != 201:
            self._answer(answer, {'error': {
                'code': answer, 'title': 'Unavailable',
                'message': 'keystone is having a bad day'}})
            return
        project = {'id': 'service-project', 'name': 'service',
                   'domain': {'id': 'default', 'name': 'Default'}}
        token = {
            'methods': ['password'],
            'expires_at': '2999-01-01T00:00:00.000000Z',
            'issued_at': '2026-01-01T00:00:00.000000Z',
            'user': {'id': 'sd', 'name': 'snapdriver',
                     'domain': {'id': 'default', 'name': 'Default'}},
            'project': project,
            'roles': [{'id': 'a', 'name': 'admin'}],
            'catalog': [{'type': 'volumev3', 'name': 'cinderv3', 'id': 'c',
                         'endpoints': [{
                             'id': 'e', 'interface': 'internal',
                             'region': 'RegionOne',
                             'region_id': 'RegionOne',
                             'url': self.server.cinder_url}]}]}
        self._answer(201, {'token': token}, headers=[
            ('X-Subject-Token',
             'service-token-%d' % len(self.server.token_requests))])

    def log_message(self, *args):
        pass


class TestReportsThroughKeystone(_StandInTestCase):
    """Service credentials against a Keystone stand-in: every transient
    failure on the way to a token or to Cinder is retried, in the same
    process, until the report arrives."""

    def _keystone(self, answers=()):
        cinder_server = self._cinder()
        port = cinder_server.server_address[1]
        keystone = _Keystone('http://127.0.0.1:%d/v3/service-project' % port,
                             answers)
        self.addCleanup(keystone.server_close)
        self.addCleanup(keystone.shutdown)
        self._service_credentials(keystone.url)
        self.conf.config(group='cinder', endpoint_override=None,
                         region_name='RegionOne', report_deadline=60)
        return keystone, cinder_server

    def test_keystone_down_then_failing_then_back(self):
        keystone, cinder_server = self._keystone(['drop', 503, 500])
        journal = journal_mod.Journal('sqlite:///' + os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'journal.sqlite'),
            migrate=True)
        driver = fake.FakeDriver()
        driver.name = 'fake'
        driver.add_guest({'name': 'g', 'disks': [
            {'target': 'vda', 'serial': 'v', 'directory': '/d',
             'chain': ['a', 'b']}]})
        driver.add_file('v', 'new', backing='a')
        manager = manager_mod.OperationManager(
            driver, cinder.CinderReporter(), journal)
        self.addCleanup(manager.stop)
        manager.recover()
        accepted = manager.accept(
            context.RequestContext(user_id='nova', project_id='p'),
            objects.CreateRequest(volume_id='v', snapshot_id='snap-1',
                                  new_file='new'))

        def attempts():
            return journal.get(accepted.id)['report_attempts']
        # Keystone refuses connections (bound, not listening) for two
        # attempts; then it drops one, answers 503 and 500, and issues a
        # token.
        self.assertTrue(_wait_for(lambda: attempts() >= 2))
        keystone.start()
        self.assertTrue(manager.wait_idle(30))
        row = journal.get(accepted.id)
        self.assertEqual('delivered', row['delivery'], row['delivery_detail'])
        self.assertEqual(['drop', 503, 500, 201], keystone.token_requests)
        [(path, token, body)] = cinder_server.requests
        self.assertEqual('/v3/service-project/snapshots/snap-1/action', path)
        self.assertEqual('service-token-4', token)
        self.assertEqual({'os-update_snapshot_status': {
            'status': 'creating', 'progress': '90%'}}, body)
        self.assertGreaterEqual(row['report_attempts'], 5)

    def test_a_401_on_service_credentials_is_tried_once_more(self):
        keystone, cinder_server = self._keystone()
        keystone.start()
        cinder_server.answers = [401] * 10
        delivery = cinder.CinderReporter().report(None, 's', 'creating')
        self.assertEqual(('given_up', 2),
                         (delivery.state, delivery.attempts))
        self.assertIn('Cinder refused it: 401', delivery.detail)
        # Each attempt gets a new token (keystoneauth also tries once more
        # itself on a 401): four requests, not a retry loop until the
        # deadline.
        self.assertEqual(4, len(cinder_server.requests))

    def test_a_401_then_success(self):
        keystone, cinder_server = self._keystone()
        keystone.start()
        cinder_server.answers = [401, 401, 202]
        delivery = cinder.CinderReporter().report(None, 's', 'creating')
        self.assertEqual(('delivered', 2),
                         (delivery.state, delivery.attempts))

    def test_keystone_refusing_the_credentials_is_not_retried_for_ever(self):
        keystone, cinder_server = self._keystone([401] * 10)
        keystone.start()
        delivery = cinder.CinderReporter().report(None, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('Keystone refused it: 401', delivery.detail)
        self.assertEqual([], cinder_server.requests)


def _wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class TestAdapterOptions(base.TestCase):
    """[cinder]'s keystoneauth adapter options.

    And the names of earlier releases.
    """

    def test_defaults(self):
        options = cinder._adapter_options('http://c/v3')
        self.assertEqual('volumev3', options['service_type'])
        self.assertEqual('internal', options['interface'])
        self.assertEqual('http://c/v3', options['endpoint_override'])
        self.assertIsNone(options['region_name'])
        for name in ('version', 'min_version', 'max_version'):
            self.assertNotIn(name, options)

    def test_interface_as_before(self):
        self.conf.config(group='cinder', interface='public',
                         region_name='RegionTwo', service_type='volume')
        options = cinder._adapter_options()
        self.assertEqual(('public', 'RegionTwo', 'volume'),
                         (options['interface'], options['region_name'],
                          options['service_type']))

    def test_valid_interfaces(self):
        self.conf.config(group='cinder', valid_interfaces=['admin', 'public'])
        self.assertEqual(['admin', 'public'],
                         cinder._adapter_options()['interface'])

    def test_contradictions_stop_the_start(self):
        self.conf.config(group='cinder', interface='public',
                         valid_interfaces=['internal'])
        error = self.assertRaises(exception.ConfigurationError,
                                  cinder.CinderAccess)
        self.assertIn('[cinder]', str(error))
        self.assertIn('valid_interfaces', str(error))
