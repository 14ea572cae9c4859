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

"""The API over a real socket: the console script, the fake driver.

Every request goes through ``snapdriver-api`` started as a process, so the
server, the middleware order and the error handling are the ones a Cinder
host talks to. Requests are made with ``http.client`` or, where bytes that
``http.client`` refuses must be sent, with a raw socket.

Most checks are tables of :class:`Case` rows (a request and the fault it
must produce: status, fault name, words of the message and, for a 405,
the exact Allow header); every row is checked and all the rows that fail
are reported together.
"""

import json
import re
import time
import urllib.parse

import fixtures
from requests import utils as requests_utils
from testtools import content

from snapdriver.drivers import loader
from snapdriver.tests import base
from snapdriver.tests.functional import server

ADMIN = 'admin:admin'
RESOURCE = '/v2.1/os-assisted-volume-snapshots'
FAULT_NAMES = {400: 'badRequest', 401: 'unauthorized', 403: 'forbidden',
               404: 'itemNotFound', 405: 'badMethod', 406: 'notAcceptable',
               409: 'conflictingRequest', 411: 'lengthRequired',
               413: 'overLimit', 415: 'badMediaType'}
# What a 405 offers instead: exactly the methods each path serves.
ALLOW_COLLECTION = 'POST'
ALLOW_ITEM = 'DELETE, GET'
ALLOW_VERSIONS = 'GET'
QUERY_NOT_UTF8 = 'The query string is not valid UTF-8.'
CHUNKED_REFUSED = ('Chunked request bodies are not accepted: send the body '
                   'with a Content-Length.')
REQUEST_ID = re.compile(
    r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')

VOLUME = '3f6e9c1c-0a5d-4a4e-9d0b-5f4c2a1b7e01'
BASE = 'volume-%s' % VOLUME
SNAP1, SNAP2, SNAP3, SNAP4 = (
    '11111111-1111-4111-8111-111111111111',
    '22222222-2222-4222-8222-222222222222',
    '33333333-3333-4333-8333-333333333333',
    '44444444-4444-4444-8444-444444444444')
FILE1, FILE2, FILE3, FILE4 = ('%s.%s' % (BASE, s)
                              for s in (SNAP1, SNAP2, SNAP3, SNAP4))


def inventory():
    """One running guest whose disk vda is VOLUME: FILE2 -> FILE1 -> BASE,
    with overlays FILE3 (on FILE2) and FILE4 (on FILE3) ready beside it,
    a raw file, and a qcow2 file whose backing is not the active image."""
    return {'guests': [{
        'name': 'instance-0001', 'state': 'running',
        'disks': [{
            'target': 'vda', 'serial': VOLUME,
            'directory': '/var/lib/cinder/mnt/0123abcd',
            'chain': [FILE2, FILE1, BASE],
            'files': {
                FILE3: {'format': 'qcow2', 'backing': FILE2},
                FILE4: {'format': 'qcow2', 'backing': FILE3},
                'plain.raw': {'format': 'raw'},
                'stray.qcow2': {'format': 'qcow2', 'backing': BASE},
            }}]}]}


# Ids that are not [A-Za-z0-9_.-]{1,255} or are '.' or '..': each is a 400
# naming the field, the value (escaped) and the rule.
BAD_IDS = ('a/b', '..', '.', 'x' * 256, 'a\nb', 'abc\n', 'a b', 'a\x1b[31m',
           '\u00e9t\u00e9', 'a;b', 'a%2e')
ID_RULE = "an id is 1 to 255 of the characters A-Z a-z 0-9 _ . -"


def escaped(value):
    """How a message quotes ``value``: its repr, cut as the API cuts it."""
    return repr(value)[1:-1][:60]


def create_body(**create_info):
    info = {'snapshot_id': SNAP3, 'type': 'qcow2', 'new_file': FILE3}
    info.update(create_info)
    return {'snapshot': {'volume_id': VOLUME, 'create_info': info}}


def delete_info(**fields):
    info = {'volume_id': VOLUME, 'type': 'qcow2', 'file_to_merge': FILE1,
            'merge_target_file': BASE}
    info.update(fields)
    return info


def encoded(text):
    """``text`` fully percent-encoded, as urllib.parse.urlencode does."""
    return urllib.parse.quote(text, safe='')


def as_novaclient_sends(text):
    """``text`` as novaclient's DELETE puts it on the wire: pasted into
    the URL unencoded, which requests then requotes (``{ " space``
    encoded, ``: ,`` raw)."""
    return requests_utils.requote_uri(text)


def delete_path(snapshot_id, info, encode=encoded, extra=''):
    text = info if isinstance(info, str) else json.dumps(info)
    return '%s/%s?%sdelete_info=%s' % (RESOURCE, snapshot_id, extra,
                                       encode(text))


class Case:
    """One row of a table of requests and the fault each must produce.

    :param words: what the fault message must contain (the field, the
        value): an operator must be able to act on it.
    :param allow: for a 405, the exact Allow header it must carry.
    :param raw: bytes to send as they are, instead of method/path/body.
    :param timeout: seconds to wait for the answer.
    """

    def __init__(self, label, status, words=(), method='POST', path=RESOURCE,
                 body=None, headers=None, content_type='application/json',
                 token=ADMIN, allow=None, raw=None, timeout=10):
        self.label = label
        self.status = status
        self.words = words
        self.method = method
        self.path = path
        self.body = body
        self.headers = dict(headers or {})
        if content_type is not None and body is not None:
            self.headers.setdefault('Content-Type', content_type)
        if token is not None:
            self.headers.setdefault('X-Auth-Token', token)
        self.allow = allow
        self.raw = raw
        self.timeout = timeout

    def send(self, port):
        if self.raw is not None:
            return server.raw_request(port, self.raw, timeout=self.timeout)
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return server.request(port, self.method, self.path, body,
                              self.headers, timeout=self.timeout)


def raw_get(path, headers=b'', method=b'GET'):
    return (method + b' ' + path + b' HTTP/1.1\r\nHost: localhost\r\n'
            b'X-Auth-Token: admin:admin\r\n' + headers +
            b'Connection: close\r\n\r\n')


class ApiTestCase(base.FunctionalTestCase):

    def start(self, **kwargs):
        """Start snapdriver-api (fake driver, noauth by default); attach
        its log to the test's details if the test fails."""
        kwargs.setdefault('inventory', inventory())
        api = self.useFixture(server.ApiServerFixture(**kwargs))
        self.addOnException(lambda exc_info: self.addDetail(
            'snapdriver-api-log', content.text_content(api.log_text())))
        return api

    def call(self, api, method, path, body=None, token=ADMIN, headers=None):
        headers = dict(headers or {})
        if token is not None:
            headers['X-Auth-Token'] = token
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
            headers.setdefault('Content-Type', 'application/json')
        return server.request(api.port, method, path, body, headers)

    # Checks of any answer.

    def assertCommonHeaders(self, response, version='2.1'):
        """The microversion and request id headers that every answer,
        errors included, carries."""
        self.assertEqual(version,
                         response.header('X-OpenStack-Nova-API-Version'),
                         response)
        self.assertEqual('compute %s' % version,
                         response.header('OpenStack-API-Version'), response)
        vary = [v.strip().lower()
                for v in (response.header('Vary') or '').split(',')]
        self.assertIn('openstack-api-version', vary)
        self.assertIn('x-openstack-nova-api-version', vary)
        request_id = response.header('X-OpenStack-Request-Id')
        self.assertIsNotNone(request_id, response)
        self.assertRegex(request_id, REQUEST_ID)
        self.assertEqual(request_id, response.header('X-Compute-Request-Id'))

    def assertFault(self, response, status, words=(), version='2.1'):
        """``response`` is the compute API's fault for ``status``."""
        self.assertEqual(status, response.status, response)
        self.assertNotIn(b'Traceback', response.body)
        self.assertNotIn(b'File "', response.body)
        self.assertTrue((response.header('Content-Type') or '').startswith(
            'application/json'), response)
        body = response.json()
        name = FAULT_NAMES[status]
        self.assertEqual([name], list(body), response)
        self.assertEqual(['code', 'message'], sorted(body[name]), response)
        self.assertEqual(status, body[name]['code'])
        message = body[name]['message']
        self.assertIsInstance(message, str)
        self.assertNotEqual('', message.strip())
        for word in words:
            self.assertIn(word, message)
        self.assertCommonHeaders(response, version)
        return message

    def assertAllow(self, response, allow, method=None):
        """A 405 carries Allow: exactly ``allow`` when given, and never
        the ``method`` refused."""
        header = response.header('Allow')
        self.assertIsNotNone(header, "405 without Allow: %r" % response)
        if allow is not None:
            self.assertEqual(allow, header, response)
        if method is not None:
            allowed = {m.strip() for m in header.split(',')}
            self.assertNotIn(method, allowed, "Allow: %s" % header)

    def check_case(self, api, case):
        response = case.send(api.port)
        self.assertFault(response, case.status, case.words)
        if case.status == 405:
            self.assertAllow(response, case.allow, case.method)

    def run_cases(self, api, cases):
        """Check every row; report all that fail, not just the first."""
        failures, summary = [], []
        for case in cases:
            try:
                self.check_case(api, case)
            except Exception as e:
                failures.append('%s: %s' % (case.label, e))
            summary.append(case.label)
        self.addDetail('cases', content.text_content('\n'.join(summary)))
        if failures:
            self.fail('%d of %d rows failed:\n%s'
                      % (len(failures), len(cases), '\n'.join(failures)))

    def wait_log(self, api, predicate, timeout=3):
        deadline = time.monotonic() + timeout
        while True:
            text = api.log_text()
            if predicate(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


class VersionDocumentTest(ApiTestCase):

    def test_version_documents(self):
        api = self.start()
        root = self.call(api, 'GET', '/', token=None)
        self.assertEqual(200, root.status, root)
        self.assertCommonHeaders(root)
        versions = root.json()['versions']
        self.assertEqual(1, len(versions))
        document = versions[0]
        self.assertEqual('v2.1', document['id'])
        self.assertEqual('CURRENT', document['status'])
        self.assertEqual('2.1', document['min_version'])
        major, minor = (int(n) for n in document['version'].split('.'))
        # It serves 2.75, the version that changes this resource.
        self.assertEqual(2, major)
        self.assertGreaterEqual(minor, 75)
        self.assertIn({'rel': 'self', 'href': api.url + '/v2.1/'},
                      document['links'])
        for path in ('/v2.1', '/v2.1/'):
            answer = self.call(api, 'GET', path, token=None)
            self.assertEqual(200, answer.status, answer)
            self.assertCommonHeaders(answer)
            self.assertEqual({'version': document}, answer.json())


class CreateTest(ApiTestCase):

    def test_create_then_get_until_succeeded(self):
        api = self.start()
        answer = self.call(api, 'POST', RESOURCE, create_body())
        self.assertEqual(200, answer.status, answer)
        self.assertCommonHeaders(answer)
        self.assertEqual({'snapshot': {'id': None, 'volumeId': VOLUME}},
                         answer.json())
        [operation] = server.wait_for_operations(api.port, SNAP3)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual('create', operation['kind'])
        self.assertEqual(VOLUME, operation['volume_id'])
        self.assertEqual('instance-0001', operation['guest'])
        self.assertEqual('vda', operation['disk'])
        self.assertEqual([FILE2, FILE1, BASE], operation['chain_before'])
        self.assertEqual([FILE3, FILE2, FILE1, BASE], operation['chain'])
        self.assertIsNone(operation['error'])
        self.assertEqual('creating', operation['status_report']['status'])
        self.assertEqual('90%', operation['status_report']['progress'])

        # An id in create_info comes back; the next overlay stacks on top.
        answer = self.call(api, 'POST', RESOURCE, create_body(
            snapshot_id=SNAP4, new_file=FILE4, id='cinder-given-id'))
        self.assertEqual(200, answer.status, answer)
        self.assertEqual(
            {'snapshot': {'id': 'cinder-given-id', 'volumeId': VOLUME}},
            answer.json())
        [operation] = server.wait_for_operations(api.port, SNAP4)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual([FILE4, FILE3, FILE2, FILE1, BASE],
                         operation['chain'])

    def test_create_with_project_id_in_url(self):
        api = self.start()
        path = '/v2.1/0123456789abcdef/os-assisted-volume-snapshots'
        answer = self.call(api, 'POST', path, create_body(),
                           token='admin:0123456789abcdef')
        self.assertEqual(200, answer.status, answer)
        [operation] = server.wait_for_operations(
            api.port, SNAP3, token='admin:0123456789abcdef',
            prefix='/v2.1/0123456789abcdef')
        self.assertEqual([FILE3, FILE2, FILE1, BASE], operation['chain'])

    def test_stub_driver_rejects_naming_itself(self):
        api = self.start(driver='vmware', inventory=None)
        for answer in (
                self.call(api, 'POST', RESOURCE, create_body()),
                self.call(api, 'DELETE', delete_path(SNAP1, delete_info()))):
            message = self.assertFault(answer, 400, ['vmware', 'libvirt'])
            self.assertIn('only', message)


class DeleteTest(ApiTestCase):

    def test_commit_percent_encoded(self):
        api = self.start()
        path = delete_path(SNAP1, delete_info())
        self.assertNotIn('{', path)
        self.assertNotIn(':', path.partition('?')[2])
        answer = self.call(api, 'DELETE', path)
        self.assertEqual(204, answer.status, answer)
        self.assertEqual(b'', answer.body)
        self.assertCommonHeaders(answer)
        [operation] = server.wait_for_operations(api.port, SNAP1)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual('commit', operation['kind'])
        self.assertEqual([FILE2, BASE], operation['chain'])
        self.assertEqual('deleting', operation['status_report']['status'])

    def test_pull_as_novaclient_sends_it(self):
        api = self.start()
        # Cinder deletes the snapshot whose file the active image backs
        # onto: pull FILE1 into FILE2, keeping BASE as the base.
        info = delete_info(file_to_merge=BASE, merge_target_file=None)
        path = delete_path(SNAP2, info, encode=as_novaclient_sends)
        query = path.partition('?')[2]
        self.assertIn(':', query)
        self.assertIn(',', query)
        self.assertIn('%7B%22volume_id%22:%20%22', query)
        self.assertIn('null', query)
        answer = self.call(api, 'DELETE', path)
        self.assertEqual(204, answer.status, answer)
        self.assertEqual(b'', answer.body)
        [operation] = server.wait_for_operations(api.port, SNAP2)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual('pull', operation['kind'])
        self.assertEqual([FILE2, BASE], operation['chain'])

    def test_delete_with_accept_json(self):
        # novaclient (and so Cinder) sends Accept: application/json.
        api = self.start()
        answer = self.call(api, 'DELETE', delete_path(SNAP1, delete_info()),
                           headers={'Accept': 'application/json'})
        self.assertEqual(204, answer.status, answer)
        self.assertEqual(b'', answer.body)
        self.assertCommonHeaders(answer)
        [operation] = server.wait_for_operations(api.port, SNAP1)
        self.assertEqual('succeeded', operation['state'], operation)
        self.assertEqual('commit', operation['kind'])
        self.assertEqual([FILE2, BASE], operation['chain'])


def _create_cases():
    def post(label, status, words, body, **kwargs):
        return Case(label, status, words, body=body, **kwargs)

    def with_snapshot(**snapshot):
        body = create_body()
        body['snapshot'].update(snapshot)
        return body

    def without(*path):
        body = create_body()
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        return body

    cases = [
        post('malformed JSON', 400, ['JSON'], '{"snapshot": {'),
        post('truncated JSON', 400, ['JSON'], '{"snapshot":1'),
        post('empty body', 400, ['JSON'], ''),
        post('body is an array', 400, ['object'], []),
        post('body is a string', 400, ['object'], '"snapshot"'),
        post('body is a number', 400, ['42', 'object'], '42'),
        post('body is null', 400, ['object'], 'null'),
        post('body not UTF-8', 400, ['UTF-8'],
             b'{"snapshot": {"volume_id": "\xff\xfe"}}'),
        post('missing snapshot', 400, ['snapshot', 'required'], {}),
        post('snapshot not an object', 400, ['snapshot', 'object'],
             {'snapshot': 'x'}),
        post('missing volume_id', 400, ['volume_id', 'required'],
             without('snapshot', 'volume_id')),
        post('missing create_info', 400, ['create_info', 'required'],
             without('snapshot', 'create_info')),
        post('create_info null', 400, ['create_info'],
             with_snapshot(create_info=None)),
        post('volume_id a number', 400, ['volume_id', '5'],
             with_snapshot(volume_id=5)),
        post('extra key at the top', 400, ['extra_top'],
             dict(create_body(), extra_top=1)),
        post('extra key in snapshot', 400, ['snapshot', 'extra_snap'],
             with_snapshot(extra_snap=1)),
        post('extra key in create_info', 400, ['create_info', 'extra_ci'],
             create_body(extra_ci=1)),
        post('type qcow3', 400, ['type', 'qcow3'], create_body(type='qcow3')),
        post('type missing', 400, ['type', 'required'],
             without('snapshot', 'create_info', 'type')),
        post('empty volume_id', 400, ['volume_id'],
             with_snapshot(volume_id='')),
        post('deep nesting', 400, ['field (body)', 'nested too deeply'],
             '{"snapshot": ' * 2000 + '{}' + '}' * 2000),
        # The pre-flight against the (fake) host.
        post('volume not attached', 400, ['volume-not-here'],
             with_snapshot(volume_id='volume-not-here')),
        post('new_file does not exist', 400, ['new_file', 'missing.qcow2'],
             create_body(new_file='missing.qcow2')),
        post('new_file not qcow2', 400, ['plain.raw', 'qcow2'],
             create_body(new_file='plain.raw')),
        post('new_file backs onto another file', 400,
             ['stray.qcow2', FILE2], create_body(new_file='stray.qcow2')),
        post('new_file already in the chain', 400, [FILE1],
             create_body(new_file=FILE1)),
        # Media types.
        post('text/plain', 415, ['text/plain'], create_body(),
             content_type='text/plain'),
        post('XML', 415, ['application/xml'], '<snapshot/>',
             content_type='application/xml'),
        post('form', 415, ['application/x-www-form-urlencoded'],
             'snapshot=1', content_type='application/x-www-form-urlencoded'),
    ]
    for field in ('snapshot_id', 'new_file', 'id'):
        cases.append(post('empty %s' % field, 400, [field],
                          create_body(**{field: ''})))
    for field in ('snapshot_id', 'new_file'):
        cases.append(post('missing %s' % field, 400, [field, 'required'],
                          without('snapshot', 'create_info', field)))
    for name in ('a/b', '../%s' % FILE3, '..', '.', '/etc/passwd',
                 'with\x00nul'):
        cases.append(post('new_file %r' % name, 400,
                          ['new_file', repr(name)[1:-1]],
                          create_body(new_file=name)))
    for value in BAD_IDS:
        cases.append(post('snapshot_id %r' % value[:40], 400,
                          ['snapshot_id', escaped(value), ID_RULE],
                          create_body(snapshot_id=value)))
        cases.append(post('volume_id %r' % value[:40], 400,
                          ['volume_id', escaped(value), ID_RULE],
                          with_snapshot(volume_id=value)))
    return cases


def _delete_cases():
    def delete(label, status, words, info, snapshot_id=SNAP1, **kwargs):
        return Case(label, status, words, method='DELETE',
                    path=delete_path(snapshot_id, info), **kwargs)

    cases = [
        Case('delete_info missing', 400, ['delete_info', 'required'],
             method='DELETE', path='%s/%s' % (RESOURCE, SNAP1)),
        Case('delete_info missing, other parameter', 400, ['delete_info'],
             method='DELETE', path='%s/%s?volume_id=%s'
             % (RESOURCE, SNAP1, VOLUME)),
        Case('delete_info twice', 400, ['delete_info'], method='DELETE',
             path=delete_path(SNAP1, delete_info(),
                              extra='delete_info=%s&'
                              % encoded(json.dumps(delete_info())))),
        delete('delete_info empty', 400, ['delete_info'], ''),
        delete('delete_info not JSON', 400, ['delete_info', '{volume_id'],
               '{volume_id: 1}'),
        delete('delete_info an array', 400, ['delete_info', 'object'],
               [delete_info()]),
        delete('delete_info a string', 400, ['delete_info', 'object'],
               '"%s"' % VOLUME),
        delete('delete_info a number', 400, ['delete_info', 'object'], '7'),
        delete('delete_info null', 400, ['delete_info', 'object'], 'null'),
        delete('missing volume_id', 400, ['volume_id', 'required'],
               {'type': 'qcow2', 'file_to_merge': FILE1,
                'merge_target_file': BASE}),
        delete('extra key', 400, ['field delete_info', 'extra_key'],
               delete_info(extra_key=1)),
        delete('type qcow3', 400, ['type', 'qcow3'],
               delete_info(type='qcow3')),
        delete('volume_id empty', 400, ['volume_id'],
               delete_info(volume_id='')),
        delete('volume_id a list', 400, ['volume_id'],
               delete_info(volume_id=[VOLUME])),
        delete('file_to_merge empty', 400, ['file_to_merge'],
               delete_info(file_to_merge='')),
        delete('merge_target_file empty', 400, ['merge_target_file'],
               delete_info(merge_target_file='')),
        delete('file_to_merge with /', 400, ['file_to_merge', '/mnt/x'],
               delete_info(file_to_merge='/mnt/x')),
        delete('file_to_merge ..', 400, ['file_to_merge', "'..'"],
               delete_info(file_to_merge='..')),
        delete('merge_target_file ../x', 400, ['merge_target_file', '../x'],
               delete_info(merge_target_file='../x')),
        delete('file_to_merge not in the chain', 400,
               ['file_to_merge', 'nothere.qcow2'],
               delete_info(file_to_merge='nothere.qcow2')),
        delete('merge_target_file not below file_to_merge', 400,
               ['merge_target_file', FILE2],
               delete_info(merge_target_file=FILE2)),
        delete('volume not attached', 400, ['volume-not-here'],
               delete_info(volume_id='volume-not-here')),
        Case('delete_info deeply nested', 400,
             ['field delete_info', 'nested too deeply'], method='DELETE',
             path='%s/%s?delete_info=%s' % (RESOURCE, SNAP1,
                                            '[' * 3000 + ']' * 3000)),
        Case('delete_info not UTF-8', 400, [QUERY_NOT_UTF8], method='DELETE',
             path='%s/%s?delete_info=%%7B%%22volume_id%%22%%3A%%22%%ff%%22'
             '%%7D' % (RESOURCE, SNAP1)),
    ]
    for value in BAD_IDS:
        cases.append(delete('volume_id %r' % value[:40], 400,
                            ['volume_id', escaped(value), ID_RULE],
                            delete_info(volume_id=value)))
    # The snapshot id of the path, for DELETE and GET ('a/b' is two path
    # segments there: 404).
    for value in BAD_IDS:
        if value == 'a/b':
            continue
        if value in ('.', '..'):
            quoted = value.replace('.', '%2E')
        else:
            quoted = encoded(value)
        for method in ('GET', 'DELETE'):
            cases.append(Case(
                '%s path id %r' % (method, value[:40]), 400,
                ['snapshot_id', escaped(value), ID_RULE], method=method,
                path=delete_path(quoted, delete_info(), encode=encoded)))
    return cases


class BadInputTest(ApiTestCase):

    def test_create_catalogue(self):
        api = self.start()
        self.run_cases(api, _create_cases())
        # None of them changed anything.
        answer = self.call(api, 'GET', '%s/%s' % (RESOURCE, SNAP3))
        self.assertFault(answer, 404, [SNAP3])

    def test_delete_catalogue(self):
        api = self.start()
        self.run_cases(api, _delete_cases())

    def test_path_and_query_catalogue(self):
        api = self.start()
        item = RESOURCE.encode() + b'/' + SNAP1.encode()
        self.run_cases(api, [
            Case('path raw bytes not UTF-8', 400, ['path', 'UTF-8'],
                 raw=raw_get(RESOURCE.encode() + b'/\xff\xfe')),
            Case('path percent-encoded not UTF-8', 400, ['path', 'UTF-8'],
                 raw=raw_get(RESOURCE.encode() + b'/%ff%fe')),
            Case('project segment not UTF-8', 400, ['path', 'UTF-8'],
                 raw=raw_get(b'/v2.1/%c3%28/os-assisted-volume-snapshots')),
            Case('DELETE path not UTF-8', 400, ['path', 'UTF-8'],
                 raw=raw_get(RESOURCE.encode() + b'/\xff?delete_info='
                             + encoded(json.dumps(delete_info())).encode(),
                             method=b'DELETE')),
            Case('query raw bytes not UTF-8', 400, [QUERY_NOT_UTF8],
                 raw=raw_get(item + b'?\xff=\xfe')),
            Case('query percent-encoded not UTF-8', 400, [QUERY_NOT_UTF8],
                 raw=raw_get(item + b'?x=%ff')),
            Case('project id of the URL is not the token\'s', 400,
                 ['other-project', 'admin'], method='GET',
                 path='/v2.1/other-project/os-assisted-volume-snapshots/x'),
            Case('project id mismatch on create', 400,
                 ['other-project', 'admin'], body=create_body(),
                 path='/v2.1/other-project/os-assisted-volume-snapshots'),
        ])

    def test_size_limits(self):
        api = self.start()
        limit = 65536
        head = (b'POST ' + RESOURCE.encode() + b' HTTP/1.1\r\n'
                b'Host: localhost\r\nX-Auth-Token: admin:admin\r\n'
                b'Content-Type: application/json\r\n')
        self.run_cases(api, [
            Case('body over the limit', 413, [str(limit)],
                 body='{"snapshot": "%s"}' % ('x' * limit)),
            # Refused on the declared length, before reading anything.
            Case('declared length over the limit', 413, [str(limit)],
                 raw=head + b'Content-Length: 10000000\r\n\r\n'),
            Case('Content-Length not a number', 400, ['Content-Length'],
                 raw=head + b'Content-Length: abc\r\n\r\n{}'),
            Case('query string over the limit', 400, ['16384'],
                 method='DELETE',
                 path=delete_path(SNAP1, delete_info(), extra='pad=%s&'
                                  % ('p' * 17000))),
        ])

    def test_chunked_bodies_are_refused(self):
        # Refused up front, whatever their size, without waiting for the
        # body: a hang is a failure (3s), not a slow pass.
        api = self.start()
        head = (b'POST ' + RESOURCE.encode() + b' HTTP/1.1\r\n'
                b'Host: localhost\r\nX-Auth-Token: admin:admin\r\n'
                b'Content-Type: application/json\r\n'
                b'Transfer-Encoding: chunked\r\n\r\n')
        body = json.dumps(create_body()).encode()
        chunk = b'x' * 4096

        def chunked(label, data):
            return Case(label, 411, [CHUNKED_REFUSED], raw=head + data,
                        timeout=3)

        self.run_cases(api, [
            chunked('small valid create',
                    b'%x\r\n' % len(body) + body + b'\r\n0\r\n\r\n'),
            chunked('over the size limit',
                    (b'1000\r\n' + chunk + b'\r\n') * 20 + b'0\r\n\r\n'),
            chunked('empty', b'0\r\n\r\n'),
        ])
        # The valid create was not accepted.
        self.assertFault(self.call(api, 'GET', '%s/%s' % (RESOURCE, SNAP3)),
                         404, [SNAP3])

    def test_unknown_methods(self):
        api = self.start()
        item = '%s/%s' % (RESOURCE, SNAP1)
        project = '/v2.1/0123456789abcdef/os-assisted-volume-snapshots'
        json_body = {'snapshot': {}}

        # Routing comes first: the body (none, not JSON, JSON) makes no
        # difference, and Allow lists exactly the methods the path serves.
        def method(verb, path, allow, body=None, content_type=None):
            label = '%s %s' % (verb, path)
            if isinstance(body, dict):
                label += ' with a JSON body'
            elif body is not None:
                label += ' with %s body %r' % (content_type, body)
            return Case(label, 405, [], method=verb, path=path, body=body,
                        content_type=content_type, allow=allow)

        def with_json(verb, path, allow):
            return method(verb, path, allow, json_body, 'application/json')

        collection, one, versions = (ALLOW_COLLECTION, ALLOW_ITEM,
                                     ALLOW_VERSIONS)
        self.run_cases(api, [
            method('GET', RESOURCE, collection),
            method('GET', project, collection),
            with_json('PUT', RESOURCE, collection),
            method('PUT', RESOURCE, collection),
            method('PUT', RESOURCE, collection, 'snapshot',
                   content_type='text/plain'),
            with_json('PATCH', RESOURCE, collection),
            method('PATCH', RESOURCE, collection, '{"snapshot": {',
                   content_type='application/json'),
            method('OPTIONS', RESOURCE, collection),
            method('FOO', RESOURCE, collection),
            method('DELETE', RESOURCE, collection),
            method('DELETE', project, collection),
            with_json('PUT', item, one),
            method('PATCH', item, one),
            with_json('POST', item, one),
            method('POST', item, one),
            method('POST', item, one, '<snapshot/>',
                   content_type='application/xml'),
            method('POST', RESOURCE + '/x', one),
            method('POST', '%s/%s' % (project, SNAP1), one),
            method('OPTIONS', item, one),
            method('OPTIONS', RESOURCE + '/x', one),
            method('POST', '/', versions),
            with_json('POST', '/', versions),
            method('DELETE', '/', versions),
            with_json('PUT', '/v2.1', versions),
            method('POST', '/v2.1', versions),
            method('DELETE', '/v2.1/', versions),
        ])
        # None of them created anything.
        self.assertFault(self.call(api, 'GET', item), 404, [SNAP1])

    def test_unknown_paths(self):
        api = self.start()
        paths = ['/nothing', '/v2', '/v2.1/servers', '/v2.1/p/q/r',
                 '/v2.1/os-assisted-volume-snapshots/x/y',
                 '/v2.1/p/os-assisted-volume-snapshots/x/y',
                 '/v2.1/p/q/os-assisted-volume-snapshots']
        cases = [Case('GET %s' % p, 404, [], method='GET', path=p)
                 for p in paths]
        cases.append(Case('unknown snapshot', 404, [SNAP1], method='GET',
                          path='%s/%s' % (RESOURCE, SNAP1)))
        cases.append(Case('DELETE below an item', 404, [], method='DELETE',
                          path='%s/x/y?delete_info=%s'
                          % (RESOURCE, encoded(json.dumps(delete_info())))))
        self.run_cases(api, cases)

    def test_framework_errors_with_accept_json(self):
        api = self.start()
        accept = {'Accept': 'application/json'}
        self.run_cases(api, [
            Case('unknown path', 404, [], method='GET', path='/nothing',
                 headers=accept),
            Case('unknown method', 405, [], method='OPTIONS', path=RESOURCE,
                 headers=accept, allow=ALLOW_COLLECTION),
            Case('unknown snapshot', 404, [SNAP1], method='GET',
                 path='%s/%s' % (RESOURCE, SNAP1), headers=accept),
            Case('known error with Accept', 400, ['qcow3'],
                 body=create_body(type='qcow3'), headers=accept),
        ])


class MicroversionTest(ApiTestCase):

    def max_version(self, api):
        return self.call(api, 'GET', '/', token=None).json()[
            'versions'][0]['version']

    def test_headers_on_every_answer(self):
        api = self.start()
        answers = {
            200: self.call(api, 'GET', '/'),
            400: self.call(api, 'POST', RESOURCE, create_body(type='qcow3')),
            401: self.call(api, 'POST', RESOURCE, create_body(), token=None),
            403: self.call(api, 'POST', RESOURCE, create_body(),
                           token='demo:demo'),
            404: self.call(api, 'GET', '/nothing'),
            405: self.call(api, 'OPTIONS', RESOURCE),
            413: self.call(api, 'POST', RESOURCE, 'x' * 70000,
                           headers={'Content-Type': 'application/json'}),
            415: self.call(api, 'POST', RESOURCE, '{}',
                           headers={'Content-Type': 'text/plain'}),
        }
        for status, answer in answers.items():
            self.assertEqual(status, answer.status, answer)
            self.assertCommonHeaders(answer)
        # With a version asked for, errors carry that version too.
        for headers in ({'X-OpenStack-Nova-API-Version': '2.60'},
                        {'OpenStack-API-Version': 'compute 2.60'}):
            answer = self.call(api, 'POST', RESOURCE, create_body(type='x'),
                               headers=headers)
            self.assertFault(answer, 400, ['type'], version='2.60')

    def test_requested_version_is_echoed(self):
        api = self.start()
        latest = self.max_version(api)
        for headers, version in (
                ({}, '2.1'),
                ({'X-OpenStack-Nova-API-Version': '2.26'}, '2.26'),
                ({'OpenStack-API-Version': 'compute 2.27'}, '2.27'),
                ({'X-OpenStack-Nova-API-Version': 'latest'}, latest),
                ({'OpenStack-API-Version': 'compute latest'}, latest),
                # Another service's version is not ours.
                ({'OpenStack-API-Version': 'volume 3.60'}, '2.1'),
                # The new header wins over the legacy one, as in Nova.
                ({'OpenStack-API-Version': 'compute 2.30',
                  'X-OpenStack-Nova-API-Version': '2.20'}, '2.30')):
            answer = self.call(api, 'GET', '/v2.1', headers=headers)
            self.assertEqual(200, answer.status, (headers, answer))
            self.assertCommonHeaders(answer, version)

    def test_unsupported_version_is_406(self):
        api = self.start()
        major, minor = self.max_version(api).split('.')
        above = '%s.%d' % (major, int(minor) + 1)
        for text in (above, '1.9', '3.0', '2.0'):
            for headers in ({'X-OpenStack-Nova-API-Version': text},
                            {'OpenStack-API-Version': 'compute ' + text}):
                answer = self.call(api, 'POST', RESOURCE, create_body(),
                                   headers=headers)
                self.assertFault(answer, 406, [text])

    def test_malformed_version_is_400(self):
        api = self.start()
        for text in ('abc', '2.01', '2.', '.1', '2.1.1', 'compute'):
            for headers in ({'X-OpenStack-Nova-API-Version': text},
                            {'OpenStack-API-Version': 'compute ' + text}):
                answer = self.call(api, 'GET', '/v2.1', headers=headers)
                self.assertFault(answer, 400, [text])

    def test_unknown_query_parameters_from_2_75(self):
        api = self.start()
        info = delete_info(file_to_merge=BASE, merge_target_file=None)
        path = delete_path(SNAP2, info, extra='force=true&')
        for version in ('2.75', 'latest'):
            answer = self.call(
                api, 'DELETE', path,
                headers={'X-OpenStack-Nova-API-Version': version})
            self.assertFault(
                answer, 400, ['field query string', 'force'], version=(
                    '2.75' if version == '2.75' else self.max_version(api)))
        # Nothing was accepted.
        self.assertFault(self.call(api, 'GET', '%s/%s' % (RESOURCE, SNAP2)),
                         404)
        # Before 2.75 the unknown parameter is ignored.
        answer = self.call(api, 'DELETE', path,
                           headers={'X-OpenStack-Nova-API-Version': '2.74'})
        self.assertEqual(204, answer.status, answer)
        self.assertCommonHeaders(answer, '2.74')
        [operation] = server.wait_for_operations(api.port, SNAP2)
        self.assertEqual([FILE2, BASE], operation['chain'])


class AuthTest(ApiTestCase):

    def test_no_token_is_401(self):
        api = self.start()
        for token in (None, '', '   '):
            for method, path, body in (
                    ('POST', RESOURCE, create_body()),
                    ('DELETE', delete_path(SNAP1, delete_info()), None),
                    ('GET', '%s/%s' % (RESOURCE, SNAP1), None)):
                headers = {} if token is None else {'X-Auth-Token': token}
                answer = self.call(api, method, path, body, token=None,
                                   headers=headers)
                self.assertFault(answer, 401)
        # Version discovery and the health check need no token.
        for path in ('/', '/v2.1', '/healthcheck'):
            self.assertEqual(200, self.call(api, 'GET', path,
                                            token=None).status)

    def test_non_admin_is_403_with_the_policy_message(self):
        api = self.start()
        for token, headers in (('demo:demo', {}),
                               # Identity headers from the caller count for
                               # nothing.
                               ('demo:demo', {'X-Roles': 'admin',
                                              'X-Identity-Status':
                                              'Confirmed'})):
            answer = self.call(api, 'POST', RESOURCE, create_body(),
                               token=token, headers=headers)
            message = self.assertFault(answer, 403)
            self.assertEqual(
                "Policy doesn't allow os_compute_api:os-assisted-volume-"
                "snapshots:create to be performed.", message)
            answer = self.call(api, 'DELETE',
                               delete_path(SNAP1, delete_info()),
                               token=token, headers=headers)
            message = self.assertFault(answer, 403)
            self.assertEqual(
                "Policy doesn't allow os_compute_api:os-assisted-volume-"
                "snapshots:delete to be performed.", message)
        # Nothing happened.
        self.assertFault(self.call(api, 'GET', '%s/%s' % (RESOURCE, SNAP3)),
                         404)

    def test_noauth_says_so_loudly(self):
        api = self.start()
        warnings = [line for line in api.log_text().splitlines()
                    if ' WARNING ' in line and 'noauth' in line]
        self.assertNotEqual([], warnings, api.log_text())
        self.assertIn('DEVELOPMENT', warnings[0])

    def test_request_ids(self):
        api = self.start()
        seen = set()
        for answer in (self.call(api, 'GET', '/'),
                       self.call(api, 'GET', '/'),
                       self.call(api, 'POST', RESOURCE, create_body(),
                                 token=None),
                       self.call(api, 'GET', '/nothing')):
            self.assertCommonHeaders(answer)
            seen.add(answer.header('X-OpenStack-Request-Id'))
        self.assertEqual(4, len(seen))

        # A caller's global request id is logged with ours.
        global_id = 'req-0a1b2c3d-0000-4000-8000-00000000abcd'
        answer = self.call(api, 'POST', RESOURCE, create_body(),
                           headers={'X-OpenStack-Request-Id': global_id})
        self.assertEqual(200, answer.status, answer)
        local_id = answer.header('X-OpenStack-Request-Id')
        self.assertNotEqual(global_id, local_id)
        log = self.wait_log(api, lambda text: global_id in text)
        self.assertTrue(
            [line for line in log.splitlines()
             if global_id in line and local_id in line],
            "no log line with both %s and %s:\n%s"
            % (global_id, local_id, log))


class StartupTest(base.FunctionalTestCase):

    def test_unknown_driver_fails_listing_installed_names(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        config = tmp + '/snapdriver.conf'
        server.write_config(config, {
            'DEFAULT': {'driver': 'no-such-driver',
                        'status_reporter': 'log',
                        'auth_strategy': 'noauth'},
            'api': {'bind_host': '127.0.0.1',
                    'bind_port': server.free_port()},
            'database': {'connection': 'sqlite:///%s/journal.sqlite' % tmp}})
        started = time.monotonic()
        code, output = server.run_to_exit(config)
        self.addDetail('output', content.text_content(output))
        self.assertNotEqual(0, code)
        self.assertLess(time.monotonic() - started, 15)
        self.assertIn('no-such-driver', output)
        installed = loader.installed_names()
        self.assertIn('fake', installed)
        for name in installed:
            self.assertIn(name, output)
        self.assertNotIn('Traceback', output)
