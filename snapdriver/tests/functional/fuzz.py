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

"""Building blocks of the fuzz suite (:mod:`test_fuzz`).

A :class:`Request` is the exact bytes of one HTTP request; :func:`exchange`
sends them over a fresh loopback connection and parses the answer;
:class:`Checker` holds every response to the contract. Four families of
Hypothesis strategies produce requests:

* ``realistic``: creates, deletes and GETs with the inventory's volumes and
  the names of the volumes' chains (as tracked by :class:`Model`), encoded
  the way novaclient and others do, so that valid requests sometimes
  succeed and invalid ones fail for the reasons the pre-flight checks;
* ``schema``: Schemathesis cases (positive and negative) generated from
  the OpenAPI document of :mod:`snapdriver.api.openapi`;
* ``raw``: well-framed HTTP with random methods, paths, query strings,
  headers (microversions, tokens, content types, lengths) and bodies
  (malformed JSON, deep nesting, invalid UTF-8, oversize); ``raw create``
  and ``raw delete`` aim such bodies and delete_info values at the
  resource itself;
* ``framing``: malformed HTTP (request lines, versions, header lines).
"""

import collections
import functools
import json
import re
import socket
import urllib.parse

from hypothesis import strategies as st
import jsonschema
import referencing
from referencing import jsonschema as referencing_jsonschema
import requests
from requests import utils as requests_utils

from snapdriver.api import microversion
from snapdriver.api import openapi

PROJECT = 'fuzzproject'
ADMIN = 'admin:' + PROJECT
RESOURCE = 'os-assisted-volume-snapshots'
AGENTS = 'os-snapdriver-agents'
# The served range (2.1 to the compute API's maximum); the answers' headers
# must stay inside it.
MIN_MINOR = microversion.MIN_VERSION[1]
MAX_MINOR = microversion.MAX_VERSION[1]

# The fault names of the REST contract (api-contract.md, "Errors").
CONTRACT_FAULTS = {
    400: 'badRequest', 401: 'unauthorized', 403: 'forbidden',
    404: 'itemNotFound', 405: 'badMethod', 406: 'notAcceptable',
    409: 'conflictingRequest', 415: 'badMediaType', 500: 'computeFault',
    501: 'notImplemented', 503: 'serviceUnavailable',
    # Beyond the contract's list, the refusals of oversized or unframed
    # requests, each with a name of its own (413 as Nova names it).
    411: 'lengthRequired', 413: 'overLimit', 414: 'requestURITooLong',
    431: 'requestHeaderFieldsTooLarge',
}

# Python exception text: tracebacks, source lines, exception class names,
# "SomethingError: ..." and object reprs.
LEAKS = re.compile(
    r'Traceback|File "|\b[A-Z][A-Za-z0-9_]*(?:Error|Exception)\b|'
    r'\bError:|\bException:| object at 0x[0-9a-fA-F]+|<class \'')
_REQUEST_ID = re.compile(
    r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
_LEGACY = re.compile(r'^2\.([1-9][0-9]*)$')
_SIMPLE_VERSION = re.compile(r'^\s*(latest|2\.([0-9]+))\s*$',
                             re.I | re.ASCII)
# Bytes that str.split() takes for white space in a latin-1 request line.
_SPLITS = frozenset(b'\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0')

# Volumes of the fake driver's inventory.
V_RUNNING = 'f0000000-0000-4000-8000-000000000001'
V_SHUTOFF = 'f0000000-0000-4000-8000-000000000002'
V_NETWORK = 'f0000000-0000-4000-8000-000000000003'
V_FAILING = 'f0000000-0000-4000-8000-000000000004'
V_MULTI = 'f0000000-0000-4000-8000-000000000005'
VOLUMES = (V_RUNNING, V_SHUTOFF, V_NETWORK, V_FAILING, V_MULTI)
SNAPSHOT_POOL = tuple('e0000000-0000-4000-8000-00000000000%d' % i
                      for i in range(1, 6))


def _disk(target, volume, **extra):
    base = 'volume-%s' % volume
    disk = {'target': target, 'serial': volume,
            'directory': '/var/lib/cinder/mnt/%s' % volume[-4:],
            'chain': ['%s.s2' % base, '%s.s1' % base, base],
            'files': {'plain.raw': {'format': 'raw'},
                      'stray.qcow2': {'format': 'qcow2', 'backing': base}}}
    disk.update(extra)
    return disk


def inventory():
    """Guests for the fake driver: running and shut-off file disks, a
    network disk, a disk whose commits and pulls fail, a volume attached
    twice and a disk without a serial."""
    network = _disk('vdc', V_NETWORK, type='network')
    del network['directory'], network['files']
    return {'guests': [
        {'name': 'instance-run', 'state': 'running',
         'disks': [_disk('vda', V_RUNNING), network,
                   _disk('vdd', V_FAILING, fail=['commit', 'pull']),
                   {'target': 'vdz'}]},
        {'name': 'instance-off', 'state': 'shutoff',
         'disks': [_disk('vdb', V_SHUTOFF), _disk('vde', V_MULTI)]},
        {'name': 'instance-other', 'state': 'running',
         'disks': [_disk('vdf', V_MULTI)]},
    ]}


class Model:
    """What the fuzzer knows of the service's state: the names each
    volume's chain may hold, snapshot ids with operations, and every string
    of an accepted request (the service may quote those later)."""

    def __init__(self):
        self.names = {}
        for guest in inventory()['guests']:
            for disk in guest['disks']:
                if disk.get('serial'):
                    self.names.setdefault(disk['serial'], []).extend(
                        disk['chain'] + sorted(disk.get('files', {})))
        self.snapshots = list(SNAPSHOT_POOL[:1])
        self.accepted_strings = set()

    def accepted(self, request):
        meta = request.meta
        for value in meta.get('strings', ()):
            self.accepted_strings.add(value)
        if meta.get('snapshot_id') and len(self.snapshots) < 500:
            self.snapshots.append(meta['snapshot_id'])
        name = meta.get('new_file')
        names = self.names.get(meta.get('volume_id'))
        if name and names is not None and len(names) < 200:
            names.append(name)


class Request:
    """One request, as bytes on the wire.

    :param origin: the strategy family that made it.
    :param length: 'auto' (Content-Length when there is a body or the
        method usually has one), None (no Content-Length) or the bytes of
        the header's value.
    :param raw: the whole request as bytes, overriding everything else.
    :param expect_version: the microversion the answer must carry, when
        the request makes it plain; None when it is not checked.
    :param meta: what the request asks for (kind, volume_id, new_file,
        snapshot_id, strings), to track accepted operations.
    """

    def __init__(self, origin, method=b'GET', target=b'/', headers=(),
                 body=b'', length='auto', version=b'HTTP/1.1', raw=None,
                 expect_version=None, meta=None):
        self.origin = origin
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.body = body
        self.length = length
        self.version = version
        self.raw = raw
        self.expect_version = expect_version
        self.meta = meta or {}
        self._bytes = None

    def to_bytes(self):
        if self._bytes is not None:
            return self._bytes
        if self.raw is not None:
            self._bytes = self.raw
            return self._bytes
        lines = [b' '.join((self.method, self.target, self.version))]
        for name, value in self.headers:
            lines.append(name + b': ' + value)
        if self.length == 'auto':
            if self.body or self.method in (b'POST', b'PUT', b'PATCH'):
                lines.append(b'Content-Length: %d' % len(self.body))
        elif self.length is not None:
            lines.append(b'Content-Length: ' + self.length)
        lines.append(b'Connection: close')
        self._bytes = b'\r\n'.join(lines) + b'\r\n\r\n' + self.body
        return self._bytes

    @property
    def method_label(self):
        method = self.method.decode('latin-1')
        if method in ('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD',
                      'OPTIONS', 'TRACE'):
            return method
        return '<other method>'

    @property
    def route(self):
        """The route the target names, for grouping findings."""
        if self.raw is not None:
            return 'malformed HTTP'
        path = self.target.split(b'?', 1)[0]
        return route_of(path)

    def reproduction(self):
        """A Python expression of the exact bytes, long runs folded."""
        return compact_repr(self.to_bytes())


def compact_repr(data, min_run=32):
    """``repr(data)``, with runs of a repeated unit (up to 16 bytes) of at
    least ``min_run`` bytes written as ``b'unit' * count``."""
    parts = []
    start = i = 0
    while i < len(data):
        best = None
        for size in range(1, 17):
            unit = data[i:i + size]
            if len(unit) < size:
                break
            count = 1
            while data[i + count * size:i + (count + 1) * size] == unit:
                count += 1
            if (count * size >= min_run and count >= 4 and
                    (best is None or count * size > best[1] * len(best[0]))):
                best = (unit, count)
        if best is None:
            i += 1
            continue
        if start < i:
            parts.append(repr(data[start:i]))
        parts.append('%r * %d' % best)
        i += best[1] * len(best[0])
        start = i
    if start < len(data) or not parts:
        parts.append(repr(data[start:]))
    return ' + '.join(parts)


def route_of(path):
    if path in (b'/', b''):
        return '/'
    if path in (b'/v2.1', b'/v2.1/'):
        return '/v2.1'
    if path in (b'/healthcheck', b'/healthcheck/'):
        return '/healthcheck'
    if path == b'/v2.1/openapi.json':
        return '/v2.1/openapi.json'
    parts = path.split(b'/')
    resource = RESOURCE.encode()
    agents = AGENTS.encode()
    if len(parts) >= 3 and parts[:2] == [b'', b'v2.1']:
        rest = parts[2:]
        # In the order the service routes them.
        if rest == [resource]:
            return '/v2.1/%s' % RESOURCE
        if len(rest) == 2 and rest[0] == resource and rest[1]:
            return '/v2.1/%s/{snapshot_id}' % RESOURCE
        if rest == [agents]:
            return '/v2.1/%s' % AGENTS
        if rest[0] in (resource, agents):
            return '<other path>'
        if len(rest) == 2 and rest[1] == resource and rest[0]:
            return '/v2.1/{project_id}/%s' % RESOURCE
        if (len(rest) == 3 and rest[1] == resource and rest[0]
                and rest[2]):
            return '/v2.1/{project_id}/%s/{snapshot_id}' % RESOURCE
        if len(rest) == 2 and rest[1] == agents and rest[0]:
            return '/v2.1/{project_id}/%s' % AGENTS
    return '<other path>'


class Answer:
    """A parsed HTTP answer."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> [values]
        self.body = body

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None


def exchange(port, data, timeout=10):
    """Send ``data`` on a new connection, half-close, read to the end.

    :returns: (sent, answer, error): whether all bytes were written, the
        parsed :class:`Answer` or None, and what went wrong (or None).
    """
    sent = False
    received = b''
    try:
        with socket.create_connection(('127.0.0.1', port),
                                      timeout=timeout) as s:
            try:
                s.sendall(data)
                sent = True
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                # The server may answer and close before reading all of a
                # request it refuses; its answer is still to be read.
                sent = sent or isinstance(e, (BrokenPipeError,
                                              ConnectionResetError))
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
    except socket.timeout:
        return sent, None, 'no complete answer within %ss' % timeout
    except OSError as e:
        if not received:
            return sent, None, 'connection error: %r' % e
    return sent, *parse(received)


def parse(received):
    head, sep, body = received.partition(b'\r\n\r\n')
    if not sep:
        return None, 'not an HTTP answer: %r' % received[:200]
    lines = head.split(b'\r\n')
    parts = lines[0].decode('latin-1').split(None, 2)
    if (len(parts) < 2 or not parts[0].startswith('HTTP/')
            or not parts[1].isdigit()):
        return None, 'not an HTTP answer: %r' % received[:200]
    headers = collections.defaultdict(list)
    for line in lines[1:]:
        name, _, value = line.decode('latin-1').partition(':')
        headers[name.strip().lower()].append(value.strip())
    return Answer(int(parts[1]), dict(headers), body), None


# Checks.

def _strings(value):
    """Every string (keys included) in a JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _json(data):
    try:
        return json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def request_texts(request):
    """The request as text, in every form the service may quote it."""
    data = request.to_bytes()
    texts = [data.decode('latin-1'), data.decode('utf-8', 'replace')]
    for text in list(texts):
        texts.append(urllib.parse.unquote(text, errors='replace'))
        texts.append(urllib.parse.unquote_plus(text, errors='replace'))
    head, _, body = data.partition(b'\r\n\r\n')
    texts.extend(_strings(_json(body)))
    query = head.split(b'\r\n', 1)[0].partition(b'?')[2].rsplit(b' ', 1)[0]
    for _, value in urllib.parse.parse_qsl(
            query.decode('latin-1'), keep_blank_values=True):
        texts.extend(_strings(_json(value.encode('utf-8', 'replace'))))
    return texts


class Checker:
    """Every check the contract makes of an answer."""

    def __init__(self, model):
        self.model = model
        self.document = openapi.build()
        resource = referencing.Resource.from_contents(
            self.document,
            default_specification=referencing_jsonschema.DRAFT202012)
        self.registry = referencing.Registry().with_resource(
            'urn:snapdriver-openapi', resource)
        self._validators = {}

    def _validator(self, name):
        if name not in self._validators:
            self._validators[name] = jsonschema.Draft202012Validator(
                {'$ref': 'urn:snapdriver-openapi#/components/schemas/%s'
                 % name}, registry=self.registry)
        return self._validators[name]

    def check(self, request, answer):
        """:returns: a list of (check, detail) for each violation."""
        found = []
        status = answer.status
        if status >= 500:
            found.append(('5xx', 'status %d: %r' % (status,
                                                    answer.body[:300])))
        found.extend(self._leaks(request, answer))
        if status >= 400:
            found.extend(self._fault(request, answer))
        found.extend(self._headers(request, answer))
        if 200 <= status < 300:
            found.extend(self._success(request, answer))
        return found

    def _leaks(self, request, answer):
        texts = [answer.body.decode('utf-8', 'replace')]
        texts.extend(_strings(_json(answer.body)))
        matches = {m.group(0) for text in texts
                   for m in LEAKS.finditer(text)}
        if not matches:
            return []
        echoes = request_texts(request)
        leaked = sorted(
            m for m in matches
            if not any(m in text for text in echoes)
            and not any(m in text for text in self.model.accepted_strings))
        if not leaked:
            return []
        return [('exception text in body',
                 '%s in %r' % (', '.join(leaked), answer.body[:500]))]

    def _fault(self, request, answer):
        status = answer.status
        if request.method == b'HEAD':
            return []  # No body, by HTTP.
        content_type = answer.header('content-type') or ''
        if not content_type.startswith('application/json'):
            return [('fault shape', 'Content-Type %r, body %r'
                     % (content_type, answer.body[:300]))]
        body = _json(answer.body)
        if not isinstance(body, dict) or len(body) != 1:
            return [('fault shape', 'not an object with one key: %r'
                     % answer.body[:300])]
        name, detail = next(iter(body.items()))
        problems = []
        if name not in CONTRACT_FAULTS.values():
            problems.append(('fault name not in the contract',
                             'status %d: %r' % (status, name)))
        elif CONTRACT_FAULTS.get(status) != name:
            problems.append(('fault name does not match the status',
                             'status %d: %r' % (status, name)))
        if (not isinstance(detail, dict)
                or sorted(detail) != ['code', 'message']
                or type(detail['code']) is not int
                or detail['code'] != status
                or not isinstance(detail['message'], str)
                or not detail['message'].strip()):
            problems.append(('fault shape', 'status %d: %r'
                             % (status, answer.body[:300])))
        return problems

    def _headers(self, request, answer):
        problems = self._header_problems(request, answer)
        if not problems:
            return []
        return [('common headers', '; '.join(problems))]

    def _header_problems(self, request, answer):
        """Microversion headers (both, once, consistent, the version asked
        for), Vary naming both, the request id headers, Allow on 405."""
        problems = []
        legacy = answer.headers.get('x-openstack-nova-api-version', [])
        new = answer.headers.get('openstack-api-version', [])
        match = _LEGACY.match(legacy[0]) if len(legacy) == 1 else None
        if (len(new) != 1 or not match
                or not MIN_MINOR <= int(match.group(1)) <= MAX_MINOR
                or new[0] != 'compute ' + legacy[0]):
            problems.append('microversion headers X-OpenStack-Nova-API-'
                            'Version %r, OpenStack-API-Version %r'
                            % (legacy, new))
        elif (request.expect_version is not None
              and legacy[0] != request.expect_version):
            problems.append('asked for microversion %s, answered with %s'
                            % (request.expect_version, legacy[0]))
        vary = {v.strip().lower() for value in answer.headers.get('vary', [])
                for v in value.split(',')}
        if not {'openstack-api-version',
                'x-openstack-nova-api-version'} <= vary:
            problems.append('Vary %r' % answer.headers.get('vary'))
        ids = (answer.headers.get('x-openstack-request-id', []),
               answer.headers.get('x-compute-request-id', []))
        if (len(ids[0]) != 1 or ids[0] != ids[1]
                or not _REQUEST_ID.match(ids[0][0])):
            problems.append('request ids X-OpenStack-Request-Id %r, '
                            'X-Compute-Request-Id %r' % ids)
        if answer.status == 405 and not answer.header('allow'):
            problems.append('405 without Allow')
        return problems

    def _documented(self, method, route):
        operations = self.document['paths'].get(route, {})
        if method == 'HEAD':
            method = 'GET'
        return method.lower() in operations

    def _success(self, request, answer):
        method = request.method_label
        route = request.route
        # /healthcheck answers every method, as oslo.middleware's does.
        if (route in self.document['paths'] and route != '/healthcheck'
                and not self._documented(method, route)):
            return [('success for a method the path does not serve',
                     'status %d: %r' % (answer.status, answer.body[:200]))]
        if method == 'HEAD':
            if answer.body:
                return [('body of a HEAD answer', repr(answer.body[:200]))]
            return []
        if method == 'DELETE' and route.endswith('{snapshot_id}'):
            if answer.status != 204 or answer.body:
                return [('documented success',
                         'DELETE answered %d with %r'
                         % (answer.status, answer.body[:200]))]
            return []
        if method == 'GET' and route == '/healthcheck':
            # The public view: OK, then each check's line.
            lines = answer.body.split(b'\n')
            return [] if lines[0] == b'OK' and all(
                line.endswith((b': OK', b': not used by this process'))
                for line in lines[1:]) else [
                ('documented success', 'healthcheck %r' % answer.body[:200])]
        if method == 'GET' and route == '/v2.1/openapi.json':
            if _json(answer.body) != self.document:
                return [('documented success',
                         'the served OpenAPI document differs')]
            return []
        name = self._SUCCESS_SCHEMAS.get((method, route))
        if name is None:
            if (method not in ('GET', 'POST', 'DELETE')
                    and not route.startswith('/healthcheck')):
                return [('success for an unknown method',
                         'status %d: %r' % (answer.status,
                                            answer.body[:200]))]
            return []
        body = _json(answer.body)
        errors = sorted(self._validator(name).iter_errors(body),
                        key=lambda e: list(e.path))
        if errors or answer.status != 200:
            return [('documented success', 'status %d, %s: %r'
                     % (answer.status, errors[0].message if errors else
                        'not 200', answer.body[:300]))]
        if (name == 'CreateResponse' and 'volume_id' in request.meta
                and body['snapshot']['volumeId'] != request.meta['volume_id']):
            return [('documented success', 'volumeId %r for volume %r'
                     % (body['snapshot']['volumeId'],
                        request.meta['volume_id']))]
        return []

    _SUCCESS_SCHEMAS = {
        ('GET', '/'): 'Versions',
        ('GET', '/v2.1'): 'VersionDocument',
        ('POST', '/v2.1/%s' % RESOURCE): 'CreateResponse',
        ('POST', '/v2.1/{project_id}/%s' % RESOURCE): 'CreateResponse',
        ('GET', '/v2.1/%s/{snapshot_id}' % RESOURCE): 'Operations',
        ('GET', '/v2.1/{project_id}/%s/{snapshot_id}' % RESOURCE):
            'Operations',
        ('GET', '/v2.1/%s' % AGENTS): 'Agents',
        ('GET', '/v2.1/{project_id}/%s' % AGENTS): 'Agents',
    }


# Strategies. Every strategy object is built once, here: building them
# per draw costs more than drawing from them.

_SAFE = 'abcdefghijklmnopqrstuvwxyz0123456789-_.'
_TCHARS = ("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "abcdefghijklmnopqrstuvwxyz")
_METHODS = (b'GET', b'POST', b'DELETE', b'PUT', b'PATCH', b'HEAD',
            b'OPTIONS', b'TRACE', b'CONNECT', b'PROPFIND', b'get', b'Post')
_FIXED_PATHS = (
    b'/', b'/v2.1', b'/v2.1/', b'/healthcheck', b'/v2.1/openapi.json',
    b'/v2.1/os-assisted-volume-snapshots',
    b'/v2.1/os-assisted-volume-snapshots/',
    b'/v2.1/os-assisted-volume-snapshots/%s' % SNAPSHOT_POOL[0].encode(),
    b'/v2.1/%s/os-assisted-volume-snapshots' % PROJECT.encode(),
    b'/v2.1/%s/os-assisted-volume-snapshots/x' % PROJECT.encode(),
    b'/v2.1/os-snapdriver-agents', b'/v2.1/os-snapdriver-agents/',
    b'/v2.1/%s/os-snapdriver-agents' % PROJECT.encode(),
    b'/v2.1/os-snapdriver-agents/x',
    b'/v2.1/os-assisted-volume-snapshots/os-snapdriver-agents',
    b'/v2', b'/v2.0', b'/v3', b'/v2.1/servers', b'//v2.1', b'/v2.1//',
    b'/v2.1/os-assisted-volume-snapshots/a/b', b'/healthcheck/',
    b'/v2.1/openapi.json/x', b'/v2.1/openapi.yaml', b'*',
    b'http://localhost/v2.1/os-assisted-volume-snapshots',
    b'/v2.1/%2e%2e/os-assisted-volume-snapshots', b'/%ff', b'/v2.1/\xff',
    b'/v2.1/os-assisted-volume-snapshots/%00', b'/v2.1/%C3%28',
)
_VERSIONS = (
    '2.1', '2.2', '2.74', '2.75', '2.76', '2.96', 'latest', 'LATEST',
    ' 2.75 ', '2.0', '2.97', '3.0', '1.1', '2.100', '2.01', '02.1', '2',
    '2.', '.1', 'v2.1', '2.1.1', '', ' ', 'compute', '2.1,2.2', '-2.1',
    '99999999999999999999.1', '2.99999999999999999999', '\u00b2.1',
    '2.\u0661')
_CONTENT_TYPES = (
    'application/json', 'application/json', 'application/json; '
    'charset=UTF-8', 'APPLICATION/JSON', 'application/json;charset=latin-1',
    'text/plain', 'application/xml', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x', 'application/vnd.openstack.compute'
    '+json;version=2.1', '', ';', 'application/', '*/*', 'application/json,'
    ' text/plain', 'application/json\x7f')


@functools.lru_cache(maxsize=None)
def _ints(low, high):
    return st.integers(low, high)


def _one_in(draw, n):
    """True once in ``n`` draws."""
    return draw(_ints(0, n - 1)) == 0


def _choose(draw, items):
    """An element of ``items``, which may grow as the run goes on: a
    fixed-range index draws the same kind of choice whatever the length,
    as Hypothesis insists."""
    return items[draw(_ints(0, 2 ** 16 - 1)) % len(items)]


def _latin1(text):
    return text.encode('latin-1', 'replace')


_BOOLEANS = st.booleans()
_UUIDS = st.uuids().map(str)
_HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126),
            max_size=40).map(_latin1),
    st.binary(max_size=40).map(
        lambda b: b.replace(b'\r', b'').replace(b'\n', b'')),
    st.text(max_size=20).map(lambda t: t.encode('utf-8')
                             .replace(b'\r', b'').replace(b'\n', b'')))
_VERSION_VALUES = st.one_of(
    st.sampled_from(_VERSIONS),
    st.text(max_size=12).filter(lambda t: '\r' not in t and '\n' not in t))
_COMPUTE_VALUES = st.one_of(
    _VERSION_VALUES.map(lambda v: 'compute ' + v),
    st.sampled_from(('volume 3.0', 'compute 2.80, volume 3.0',
                     'volume 3.0, compute 2.80', 'COMPUTE 2.5', 'compute',
                     'compute  2.75', 'compute\t2.7',
                     'compute latest, compute 2.2')),
    _VERSION_VALUES)
# Tokens other than the administrator's of PROJECT: a member (403), other
# projects (400 with a project id in the URL), none (401), odd ones.
_TOKENS = st.one_of(
    st.sampled_from(('member:' + PROJECT, 'admin:other', 'admin', '', ' ',
                     ':', 'admin:', ':' + PROJECT)),
    st.none(),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30))


def expected_version(legacy, new):
    """The version the answer must carry, in the plain cases only.

    :param legacy: the X-OpenStack-Nova-API-Version value or None.
    :param new: the OpenStack-API-Version value or None.
    """
    def plain(text):
        match = _SIMPLE_VERSION.match(text) if text.isascii() else None
        if not match:
            return None
        if match.group(1).lower() == 'latest':
            return '2.%d' % MAX_MINOR
        if match.group(2).startswith('0') or len(match.group(2)) > 3:
            return None
        minor = int(match.group(2))
        return '2.%d' % minor if MIN_MINOR <= minor <= MAX_MINOR else None

    if legacy is None and new is None:
        return '2.%d' % MIN_MINOR
    if new is None:
        return plain(legacy) if legacy.strip() else None
    if legacy is None and new.startswith('compute ') and ',' not in new:
        return plain(new[len('compute '):])
    return None


def _common_headers(draw):
    """Host, a token (mostly an administrator's), microversion headers
    (none, one or both; valid or not).

    :returns: (headers, expected version or None)
    """
    headers = [(b'Host', b'127.0.0.1')]
    token = ADMIN if not _one_in(draw, 4) else draw(_TOKENS)
    if token is not None:
        headers.append((b'X-Auth-Token', _latin1(token)))
    legacy = new = None
    if draw(_BOOLEANS):
        legacy = draw(_VERSION_VALUES)
        headers.append((b'X-OpenStack-Nova-API-Version',
                        legacy.encode('utf-8')))
    if draw(_BOOLEANS):
        new = draw(_COMPUTE_VALUES)
        headers.append((b'OpenStack-API-Version', new.encode('utf-8')))
    return headers, expected_version(legacy, new)


# Realistic requests.

_SAFE_NAMES = st.text(_SAFE, min_size=1, max_size=40).filter(
    lambda n: n not in ('.', '..'))
_BAD_NAMES = st.sampled_from(('', '.', '..', 'a/b', '../x', '/etc/passwd',
                              'x\x00y', 'volume-1.s1/', ' ', 'x' * 300))
_VOLUMES = st.sampled_from(VOLUMES + VOLUMES + VOLUMES + (
    '', 'not-attached', V_RUNNING.upper()))
_SNAPSHOT_IDS = _UUIDS | st.sampled_from(SNAPSHOT_POOL)


def _file_name(draw, model, volume):
    """A name from the volume's chain, a fresh plain name, or one that
    is not a plain name."""
    kind = draw(_ints(0, 3))
    if kind <= 1:
        return _choose(draw, model.names.get(volume) or ['volume-x'])
    if kind == 2:
        return draw(_SAFE_NAMES)
    return draw(_BAD_NAMES)


def _path(draw, tail, resource=RESOURCE):
    """The resource's path, with the token's project, another one or no
    project id."""
    kind = draw(_ints(0, 9))
    project = '' if kind < 5 else (
        PROJECT + '/' if kind < 9 else 'someone-else/')
    return ('/v2.1/%s%s%s' % (project, resource, tail)).encode()


@st.composite
def realistic_create(draw, model):
    volume = draw(_VOLUMES)
    snapshot_id = draw(_SNAPSHOT_IDS)
    if draw(_BOOLEANS):
        new_file = 'volume-%s.%s' % (volume, snapshot_id)
    else:
        new_file = _file_name(draw, model, volume)
    info = {'snapshot_id': snapshot_id, 'type': 'qcow2', 'new_file': new_file}
    if _one_in(draw, 10):
        info['type'] = draw(st.sampled_from(('raw', 'QCOW2', '', None, 2)))
    if _one_in(draw, 5):
        info['id'] = draw(_UUIDS | st.sampled_from(('', None)))
    body = {'snapshot': {'volume_id': volume, 'create_info': info}}
    if _one_in(draw, 20):
        body['snapshot'][draw(st.sampled_from(('extra', 'id')))] = 'x'
    headers, expected = _common_headers(draw)
    if not _one_in(draw, 10):
        headers.append((b'Content-Type', b'application/json'))
    if draw(_BOOLEANS):
        headers.append((b'Accept', b'application/json'))
    text = json.dumps(body, ensure_ascii=draw(_BOOLEANS))
    return Request(
        'realistic create', b'POST', _path(draw, ''), headers,
        text.encode('utf-8'), expect_version=expected,
        meta={'kind': 'create', 'volume_id': volume,
              'snapshot_id': snapshot_id, 'new_file': new_file,
              'strings': [volume, snapshot_id, new_file]})


_QUERY_STYLES = st.sampled_from(('novaclient', 'urlencode', 'raw'))


def _encode_query(draw, text):
    """delete_info as clients put it in the query string."""
    how = draw(_QUERY_STYLES)
    if how == 'novaclient' or (how == 'raw' and (' ' in text or '#' in text
                                                 or '\x00' in text)):
        # novaclient pastes json.dumps() into the URL; requests requotes.
        return requests_utils.requote_uri(text).encode('latin-1', 'replace')
    if how == 'urlencode':
        return urllib.parse.quote(text, safe='').encode('ascii')
    return text.encode('utf-8')


def _merge_name(draw, model, volume):
    return None if _one_in(draw, 4) else _file_name(draw, model, volume)


@st.composite
def realistic_delete(draw, model):
    volume = draw(_VOLUMES)
    snapshot_id = draw(_SNAPSHOT_IDS)
    info = {'volume_id': volume, 'type': 'qcow2'}
    shape = draw(_ints(0, 3))
    if shape == 0:
        info.update(file_to_merge=None, merge_target_file=None)
    elif shape == 1:
        info.update(file_to_merge=_merge_name(draw, model, volume),
                    merge_target_file=None)
    else:
        info.update(file_to_merge=_merge_name(draw, model, volume),
                    merge_target_file=_merge_name(draw, model, volume))
    if _one_in(draw, 10):
        del info[_choose(draw, sorted(info))]
    if _one_in(draw, 20):
        info['extra'] = 1
    text = json.dumps(info)
    query = b'delete_info=' + _encode_query(draw, text)
    extra = draw(_ints(0, 9))
    if extra == 0:
        query += b'&all_tenants=1'
    elif extra == 1:
        query = b'x=1&' + query
    elif extra == 2:
        query += b'&' + query
    headers, expected = _common_headers(draw)
    if draw(_BOOLEANS):
        headers.append((b'Accept', b'application/json'))
    path = _path(draw, '/' + urllib.parse.quote(snapshot_id))
    strings = [volume, snapshot_id] + [
        v for v in info.values() if isinstance(v, str)]
    return Request(
        'realistic delete', b'DELETE', path + b'?' + query, headers,
        expect_version=expected,
        meta={'kind': 'delete', 'volume_id': volume,
              'snapshot_id': snapshot_id, 'strings': strings})


@st.composite
def realistic_get(draw, model):
    if _one_in(draw, 8):
        headers, expected = _common_headers(draw)
        return Request('realistic get', b'GET', _path(draw, '', AGENTS),
                       headers, expect_version=expected)
    if draw(_BOOLEANS):
        snapshot_id = _choose(draw, model.snapshots)
    else:
        snapshot_id = draw(_UUIDS)
    headers, expected = _common_headers(draw)
    return Request('realistic get', b'GET', _path(draw, '/' + snapshot_id),
                   headers, expect_version=expected)


# Raw requests: well-framed HTTP, anything inside.

_SEGMENTS = st.one_of(
    st.sampled_from((b'', b'.', b'..', b'%2e%2e', b'%2F', b'%00', b'%ff',
                     b'%c3%28', b'%', b'%zz', b'\xff\xfe', b'\xc3\xa9', b'~',
                     b';x=1', RESOURCE.encode(), b'v2.1', PROJECT.encode(),
                     b'openapi.json', AGENTS.encode())),
    st.text(max_size=20).map(
        lambda t: urllib.parse.quote(t, safe='').encode('ascii')),
    st.binary(max_size=12).map(
        lambda b: bytes(c for c in b if c > 32 and c not in b'?#/'
                        and c not in _SPLITS)),
    st.integers(1, 3000).map(lambda n: b'a' * n))
_SEGMENT_LISTS = st.lists(_SEGMENTS, min_size=1, max_size=4)
_PATH_PREFIXES = st.sampled_from((
    b'', b'/v2.1', b'/v2.1/' + PROJECT.encode(),
    b'/v2.1/' + RESOURCE.encode()))


def _raw_path(draw):
    if draw(_BOOLEANS):
        return draw(st.sampled_from(_FIXED_PATHS))
    path = draw(_PATH_PREFIXES) + b'/' + b'/'.join(draw(_SEGMENT_LISTS))
    if _one_in(draw, 10):
        path += b'/' + RESOURCE.encode()
    return path


_JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(),
              st.floats(allow_nan=False), st.text(max_size=20),
              st.sampled_from(('qcow2', V_RUNNING, ''))),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(('snapshot', 'volume_id', 'create_info',
                             'snapshot_id', 'type', 'new_file', 'id',
                             'file_to_merge', 'merge_target_file',
                             'delete_info')) | st.text(max_size=8),
            inner, max_size=5)),
    max_leaves=12)
_CREATE_FIELDS = st.sampled_from(('snapshot', 'volume_id', 'create_info',
                                  'snapshot_id', 'type', 'new_file', 'id'))
_BAD_JSON = st.sampled_from((
    b'', b'{', b'}', b'[', b'{"snapshot": ', b'{"snapshot": {}', b'null',
    b'nul', b'tru', b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}',
    b'[1, 2,]', b"{'snapshot': 1}", b'{"snapshot": 1} x', b'\xef\xbb\xbf{}',
    b'{"\\ud800": "\\udfff"}', b'"\\u0000"', b'1e999999', b'-',
    b'{"snapshot": {"volume_id": "\\x"}}', b'{"a":1,"a":2}', b'\x00',
    b'{"snapshot": "\xff"}', b'\xff\xfe{\x00}\x00', b'\xc3\x28',
    b'\xed\xa0\x80', b'123456789' * 600, b'"' + b'\\' * 201 + b'"'))
_NESTING = st.sampled_from(((b'[', b']'), (b'{"a":', b'}'),
                            (b'{"snapshot":', b'}')))
_BAD_UTF8 = st.sampled_from((b'\xff', b'\xc0\xaf', b'\xed\xa0\x80', b'\x80',
                             b'\xf8\x88\x80\x80\x80'))
_BINARY = st.binary(max_size=200)


def json_body(draw):
    """A body: JSON of any shape, a near-valid create, broken JSON, deep
    nesting, bytes, invalid UTF-8."""
    kind = draw(_ints(0, 9))
    if kind <= 3:
        return json.dumps(draw(_JSON_VALUES)).encode('utf-8')
    if kind <= 5:
        body = {'snapshot': {'volume_id': _choose(draw, VOLUMES),
                             'create_info': {
                                 'snapshot_id': SNAPSHOT_POOL[1],
                                 'type': 'qcow2', 'new_file': 'nf'}}}
        # One field replaced with anything.
        where = draw(_CREATE_FIELDS)
        value = draw(_JSON_VALUES)
        if where == 'snapshot':
            body['snapshot'] = value
        elif where in ('volume_id', 'create_info'):
            body['snapshot'][where] = value
        else:
            body['snapshot']['create_info'][where] = value
        return json.dumps(body).encode('utf-8')
    if kind == 6:
        return draw(_BAD_JSON)
    if kind == 7:
        opener, closer = draw(_NESTING)
        depth = draw(_ints(1, 60000 // len(opener)))
        return opener * depth + b'1' + closer * (
            depth * draw(_ints(0, 8)) // 8)
    if kind == 8:
        return draw(_BINARY)
    text = json.dumps(draw(_JSON_VALUES)).encode('utf-8')
    position = draw(_ints(0, 2 ** 16)) % (len(text) + 1)
    return text[:position] + draw(_BAD_UTF8) + text[position:]


_DELETE_FIELDS = st.sampled_from(('volume_id', 'type', 'file_to_merge',
                                  'merge_target_file', 'extra'))


def delete_info_text(draw):
    """A delete_info value: a near-valid one with one field replaced by
    anything, or any body of :func:`json_body`."""
    if draw(_BOOLEANS):
        return json_body(draw)
    info = {'volume_id': _choose(draw, VOLUMES), 'type': 'qcow2',
            'file_to_merge': None, 'merge_target_file': None}
    info[draw(_DELETE_FIELDS)] = draw(_JSON_VALUES)
    return json.dumps(info).encode('utf-8')


def _query_value(draw, data):
    """``data`` in a query string: percent-encoded, requoted as requests
    does for novaclient, or raw (minus what would end the value)."""
    how = draw(_ints(0, 2))
    if how == 0:
        return urllib.parse.quote_from_bytes(data, safe='').encode('ascii')
    if how == 1:
        return requests_utils.requote_uri(data.decode('latin-1')).encode(
            'latin-1', 'replace').replace(b' ', b'%20')
    return bytes(c for c in data if c > 32 and c not in b'#&'
                 and c not in _SPLITS)


@st.composite
def raw_creates(draw):
    """POST on the resource (an administrator, mostly) with any body."""
    headers, expected = _common_headers(draw)
    content_type = (b'application/json' if not _one_in(draw, 8)
                    else _latin1(_choose(draw, _CONTENT_TYPES)))
    headers.append((b'Content-Type', content_type))
    return Request('raw create', b'POST', _path(draw, ''), headers,
                   json_body(draw), expect_version=expected)


@st.composite
def raw_deletes(draw):
    """DELETE on an item (an administrator, mostly) with any delete_info,
    sometimes with other parameters."""
    headers, expected = _common_headers(draw)
    query = b'delete_info=' + _query_value(draw, delete_info_text(draw)[:8000])
    extra = draw(_ints(0, 9))
    if extra == 0:
        query += b'&' + query
    elif extra == 1:
        query = _raw_query(draw) + b'&' + query
    path = _path(draw, '/' + draw(_UUIDS))
    return Request('raw delete', b'DELETE', path + b'?' + query, headers,
                   expect_version=expected)


_QUERY_KEYS = st.sampled_from((
    b'delete_info', b'delete_info', b'x', b'all_tenants', b'delete_info[]',
    b'DELETE_INFO', b'', b'%ff', b'\xff')) | st.text(max_size=6).map(
        lambda t: urllib.parse.quote(t).encode('ascii'))
_QUERY_VALUES = st.sampled_from((b'', b'%', b'%ff', b'%c3%28', b'%7B', b'{',
                                 b'null', b'[]', b'%22x%22', b'\xff'))


def _raw_query(draw):
    """A query string: delete_info valid or not, encoded or not, other
    parameters, repeats, invalid UTF-8, too long."""
    if _one_in(draw, 40):
        return b'delete_info=' + b'a' * draw(_ints(16000, 17000))
    params = []
    for _ in range(draw(_ints(0, 3))):
        key = draw(_QUERY_KEYS)
        kind = draw(_ints(0, 2))
        if kind == 0:
            value = urllib.parse.quote_from_bytes(
                json_body(draw)[:4000], safe='').encode('ascii')
        elif kind == 1:
            value = bytes(c for c in json_body(draw)[:4000]
                          if c > 32 and c not in b'#&' and c not in _SPLITS)
        else:
            value = draw(_QUERY_VALUES)
        params.append(key if _one_in(draw, 10) else key + b'=' + value)
    return b'&'.join(params)


_RAW_METHODS = st.sampled_from(_METHODS) | st.text(
    _TCHARS, min_size=1, max_size=10).map(_latin1) | st.binary(
        min_size=1, max_size=6).map(
            lambda b: bytes(c for c in b if c not in _SPLITS) or b'X')
_HEADER_NAMES = st.sampled_from((
    b'Accept', b'X-Auth-Token', b'X-OpenStack-Request-Id', b'X-Roles',
    b'X-Project-Id', b'X-Identity-Status', b'Content-Type',
    b'Content-Encoding', b'Transfer-Encoding', b'X-Forwarded-Proto',
    b'Expect', b'Range', b'Cookie', b'OpenStack-API-Version',
    b'X-OpenStack-Nova-API-Version')) | st.text(
        _TCHARS, min_size=1, max_size=20).map(_latin1)
_BAD_LENGTHS = (b'-1', b'abc', b'', b' 5', b'+5', b'0x10', b'1e3', b'5, 5',
                b'99999999999999999999', b'65537', b'1000000000', b'0')
_TRANSFER_ENCODINGS = st.sampled_from((b'chunked', b'gzip, chunked',
                                       b'identity', b'CHUNKED'))


@st.composite
def raw_requests(draw):
    method = draw(_RAW_METHODS)
    target = _raw_path(draw)
    if draw(_BOOLEANS):
        target += b'?' + _raw_query(draw)
    headers, expected = _common_headers(draw)
    if not _one_in(draw, 3):
        headers.append((b'Content-Type',
                        _latin1(_choose(draw, _CONTENT_TYPES))))
    for _ in range(draw(_ints(0, 3))):
        name = draw(_HEADER_NAMES)
        if name.lower() in (b'openstack-api-version',
                            b'x-openstack-nova-api-version'):
            expected = None
        headers.append((name, draw(_HEADER_VALUES)))
    body = b'' if _one_in(draw, 3) else json_body(draw)
    length = 'auto'
    framing = draw(_ints(0, 19))
    if framing == 0:
        length = None
    elif framing == 1:
        length = _choose(draw, _BAD_LENGTHS + (
            str(len(body) + 5).encode(), str(max(len(body) - 1, 0)).encode()))
    elif framing == 2:
        headers.append((b'Transfer-Encoding', draw(_TRANSFER_ENCODINGS)))
        if draw(_BOOLEANS):
            body = b'%x\r\n%s\r\n0\r\n\r\n' % (len(body), body)
            length = None
    elif framing == 3:
        body = b''
        length = str(draw(_ints(65537, 10 ** 9))).encode()
    version = b'HTTP/1.0' if _one_in(draw, 10) else b'HTTP/1.1'
    return Request('raw', method, target, headers, body, length=length,
                   version=version, expect_version=expected)


# Malformed HTTP.

_MALFORMED = st.sampled_from((
    b'GET / HTTP/2.0\r\n\r\n',
    b'GET /v2.1/os-assisted-volume-snapshots HTTP/3.0\r\n\r\n',
    b'GET / HTTP/1.1.1\r\n\r\n',
    b'GET / HTTP/x.y\r\n\r\n',
    b'GET / HTTPS/1.1\r\n\r\n',
    b'GET / http/1.1\r\n\r\n',
    b'GET / HTTP/1.1 extra\r\n\r\n',
    b'POST /v2.1/os-assisted-volume-snapshots\r\n\r\n',
    b'garbage\r\n\r\n',
    b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n',
    b'GET / HTTP/1.1\nHost: x\nX-Auth-Token: ' + ADMIN.encode() + b'\n\n',
    b'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n',
    b'GET / HTTP/1.1\r\nno colon here\r\n\r\n',
    b'GET / HTTP/1.1\r\n: empty name\r\n\r\n',
    b'GET / HTTP/1.1\r\nX\x00Y: z\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
))
_WORDS = st.lists(
    st.binary(min_size=1, max_size=12).map(
        lambda b: bytes(c for c in b if c not in _SPLITS) or b'x'),
    min_size=1, max_size=5)


@st.composite
def framing_requests(draw):
    kind = draw(_ints(0, 4))
    if kind == 0:
        raw = draw(_MALFORMED)
    elif kind == 1:
        raw = (b'GET /' + b'a' * draw(_ints(65536, 70000))
               + b' HTTP/1.1\r\n\r\n')
    elif kind == 2:
        raw = (b'GET / HTTP/1.1\r\nX-Long: '
               + b'a' * draw(_ints(65536, 70000)) + b'\r\n\r\n')
    elif kind == 3:
        raw = (b'GET / HTTP/1.1\r\n'
               + b'X-Many: 1\r\n' * draw(_ints(101, 200)) + b'\r\n')
    else:
        words = draw(_WORDS)
        if len(words) == 2 and words[0] == b'GET':
            words.append(b'HTTP/9.9')
        raw = b' '.join(words) + b'\r\n\r\n'
    return Request('framing', raw=raw)


# Schema-driven requests (Schemathesis).

def schema_strategies(document, base_url):
    """Strategies of :class:`Request` from Schemathesis cases of every
    operation: positive and negative, with generated tokens and project
    ids or with an administrator's token and project.

    :returns: a list of (label, strategy).
    """
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.iter_parameters()}
        for mode in (schemathesis.GenerationMode.POSITIVE,
                     schemathesis.GenerationMode.NEGATIVE):
            label = 'schema %s' % mode.value
            strategies.append((label, operation.as_strategy(
                generation_mode=mode).map(
                    functools.partial(_from_case, base_url=base_url,
                                      label=label))))
            if 'X-Auth-Token' in names:
                fixed = {'headers': {'X-Auth-Token': ADMIN}}
                if 'project_id' in names:
                    fixed['path_parameters'] = {'project_id': PROJECT}
                label = 'schema %s, admin' % mode.value
                strategies.append((label, operation.as_strategy(
                    generation_mode=mode, **fixed).map(
                        functools.partial(_from_case, base_url=base_url,
                                          label=label))))
    return strategies


_DROPPED = {'user-agent', 'accept-encoding', 'connection', 'content-length'}
_VERSION_HEADERS = ('x-openstack-nova-api-version', 'openstack-api-version')


def _unsendable(label, why):
    """A case that cannot be put on the wire (the fuzzer skips it)."""
    return Request(label + ' (not sendable, skipped)',
                   meta={'unsendable': why})


def _from_case(case, base_url, label):
    """The bytes of a Schemathesis case, as requests would send them."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    try:
        prepared = requests.Request(
            method=kwargs['method'], url=kwargs['url'],
            params=kwargs.get('params'), data=kwargs.get('data'),
            json=kwargs.get('json'), cookies=kwargs.get('cookies'),
            files=kwargs.get('files')).prepare()
    except (requests.RequestException, ValueError, TypeError,
            UnicodeError) as e:
        return _unsendable(label, repr(e))
    merged = dict(kwargs.get('headers') or {})
    lower = {k.lower() for k in merged}
    for name, value in prepared.headers.items():
        if name.lower() not in lower:
            merged[name] = value
    # Microversion headers first, so that no odd byte in another header
    # can hide them from the server's header parser.
    items = sorted(merged.items(),
                   key=lambda kv: kv[0].lower() not in _VERSION_HEADERS)
    headers = [(b'Host', b'127.0.0.1')]
    versions = {}
    for name, value in items:
        if name.lower() in _DROPPED:
            continue
        value = str(value)
        if (any(c in value for c in '\r\n')
                or any(c in name for c in '\r\n: ') or not name):
            return _unsendable(label, 'header %r: %r' % (name, value))
        if name.lower() in _VERSION_HEADERS:
            versions[name.lower()] = value.strip()
        try:
            encoded = value.encode('latin-1')
        except UnicodeEncodeError:
            encoded = value.encode('utf-8')
        headers.append((name.encode('latin-1', 'replace'), encoded))
    body = prepared.body or b''
    if isinstance(body, str):
        body = body.encode('utf-8')
    target = prepared.path_url.encode('latin-1', 'replace')
    return Request(label, case.method.upper().encode('latin-1'), target,
                   headers, body, expect_version=expected_version(
                       versions.get(_VERSION_HEADERS[0]),
                       versions.get(_VERSION_HEADERS[1])))
