"""The Cinder status reporter against an HTTP stand-in for Cinder."""

import http.server
import json
import threading

from keystoneauth1 import loading as ks_loading

from snapdriver import context
from snapdriver.operations import cinder
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


class TestCinderReporter(base.TestCase):

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

    def test_no_credentials_at_all(self):
        self._cinder()
        delivery = cinder.CinderReporter().report(None, 's', 'creating')
        self.assertEqual('given_up', delivery.state)
        self.assertIn('[cinder] auth_type', delivery.detail)
