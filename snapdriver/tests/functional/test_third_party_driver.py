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

"""A driver from another distribution is found by its entry point name.

The test writes a tiny package, ``snapdriver-thirdparty``, whose only tie
to snapdriver is the ``snapdriver.drivers`` entry point in its setup.cfg
(and its import of the driver kit); pip builds and installs it into a
temporary directory (offline, no index), and processes that have that
directory on PYTHONPATH load it by name: the loader, and the console
script serving a create with it.

The sample package in ``examples/snapdriver-example-driver`` runs its own
tests against the installed snapdriver: the contract suite comes from
``snapdriver.testing``, never from snapdriver's test tree.

The package builds with a PEP 517 backend of its own, in the standard
library only: setuptools cannot build a wheel without the ``wheel``
package (absent from the virtualenvs ``python -m venv`` makes up to
Python 3.11, and setuptools itself is absent from them from 3.12), and
without an index pip cannot fetch either. The backend reads the same
setup.cfg sections setuptools would.
"""

import json
import os
import subprocess
import sys
import textwrap

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

import fixtures
from testtools import content

from snapdriver import testing
from snapdriver.tests import base
from snapdriver.tests.functional import server

ENTRY_POINT_NAME = 'thirdparty'
GUEST = 'thirdparty-guest'

SETUP_CFG = """\
[metadata]
name = snapdriver-thirdparty
version = 0.1

[options]
packages = snapdriver_thirdparty

[options.entry_points]
snapdriver.drivers =
    thirdparty = snapdriver_thirdparty:Driver
"""

PYPROJECT = """\
[build-system]
requires = []
build-backend = "stdlib_backend"
backend-path = ["."]
"""

BACKEND = '''\
"""Build a pure-Python wheel from setup.cfg with the standard library."""

import base64
import configparser
import hashlib
import os
import zipfile


def _setup_cfg():
    parser = configparser.ConfigParser()
    parser.read('setup.cfg')
    name = parser['metadata']['name']
    version = parser['metadata']['version']
    packages = parser['options']['packages'].split()
    entry_points = {
        group: [line.strip() for line in value.splitlines() if line.strip()]
        for group, value in parser['options.entry_points'].items()}
    return name, version, packages, entry_points


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(
        hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return '%s,sha256=%s,%d' % (path, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    name, version, packages, entry_points = _setup_cfg()
    dist = name.replace('-', '_')
    info = '%s-%s.dist-info' % (dist, version)
    files = {}
    for package in packages:
        for root, _, names in os.walk(package):
            for file_name in sorted(names):
                if file_name.endswith('.py'):
                    path = os.path.join(root, file_name)
                    with open(path, 'rb') as f:
                        files[path.replace(os.sep, '/')] = f.read()
    files[info + '/METADATA'] = (
        'Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n'
        % (name, version)).encode()
    files[info + '/WHEEL'] = (
        'Wheel-Version: 1.0\\nGenerator: stdlib_backend\\n'
        'Root-Is-Purelib: true\\nTag: py3-none-any\\n').encode()
    files[info + '/entry_points.txt'] = ''.join(
        '[%s]\\n%s\\n\\n' % (group, '\\n'.join(lines))
        for group, lines in entry_points.items()).encode()
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(info + '/RECORD,,')
    files[info + '/RECORD'] = ('\\n'.join(record) + '\\n').encode()
    wheel_name = '%s-%s-py3-none-any.whl' % (dist, version)
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), 'w',
                         zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return wheel_name
'''

DRIVER = '''\
"""A third party's snapdriver driver: one guest, one disk, any volume."""

from snapdriver.drivers import kit


class Driver(kit.BaseDriver):

    def capabilities(self):
        return kit.Capabilities(create=True)

    def locate_disk(self, volume_id):
        return kit.DiskLocation(
            volume_id=volume_id, guest=%(guest)r, target='sdz',
            running=True, directory='/srv/thirdparty',
            chain=(kit.ChainEntry(name='tp-base',
                                  path='/srv/thirdparty/tp-base'),))

    def inspect_overlay(self, disk, new_file):
        return kit.OverlayInfo(name=new_file, exists=True, fmt='qcow2',
                               backing=disk.active.name,
                               backing_fmt=disk.active.fmt)

    def create_snapshot(self, plan):
        return list(plan.expected_chain)

    def delete_snapshot(self, plan):
        return list(plan.expected_chain)
''' % {'guest': GUEST}

PROBE = """\
import json
from importlib import metadata
from snapdriver import exception
from snapdriver.drivers import loader
result = {'installed': loader.installed_names()}
try:
    driver = loader.load(%r)
except exception.DriverLoadError as e:
    result['error'] = '%%s: %%s' %% (type(e).__name__, e)
else:
    result['class'] = '%%s.%%s' %% (type(driver).__module__,
                                  type(driver).__name__)
    result['name'] = driver.name
    [ep] = [ep for ep in metadata.entry_points(group=loader.NAMESPACE)
            if ep.name == %r]
    result['distribution'] = ep.dist.name
    result['bases'] = [c.__module__ + '.' + c.__name__
                       for c in type(driver).__mro__]
print(json.dumps(result))
""" % (ENTRY_POINT_NAME, ENTRY_POINT_NAME)


class ThirdPartyDriverTest(base.FunctionalTestCase):

    def install_package(self):
        """Write the package, pip-install it into a directory of its own.

        :returns: the directory to put on PYTHONPATH.
        """
        tmp = self.useFixture(fixtures.TempDir()).path
        source = os.path.join(tmp, 'src')
        package = os.path.join(source, 'snapdriver_thirdparty')
        os.makedirs(package)
        for path, text in (('setup.cfg', SETUP_CFG),
                           ('pyproject.toml', PYPROJECT),
                           ('stdlib_backend.py', BACKEND),
                           ('snapdriver_thirdparty/__init__.py', DRIVER)):
            with open(os.path.join(source, path), 'w') as f:
                f.write(textwrap.dedent(text))
        target = os.path.join(tmp, 'site')
        env = self.environment()
        env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
        done = subprocess.run(
            [sys.executable, '-m', 'pip', 'install', '--no-deps',
             '--no-build-isolation', '--no-index', '--target', target,
             source],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, cwd=tmp, timeout=120)
        output = done.stdout.decode('utf-8', 'replace')
        self.addDetail('pip-output', content.text_content(output))
        self.assertEqual(0, done.returncode, output)
        self.assertTrue(os.path.isfile(os.path.join(
            target, 'snapdriver_thirdparty-0.1.dist-info',
            'entry_points.txt')), os.listdir(target))
        return target

    def environment(self, pythonpath=None):
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)
        if pythonpath:
            env['PYTHONPATH'] = pythonpath
        return env

    def probe(self, pythonpath=None):
        done = subprocess.run(
            [sys.executable, '-c', PROBE], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.environment(pythonpath), timeout=60)
        self.assertEqual(0, done.returncode, done.stderr)
        return json.loads(done.stdout.decode().strip().splitlines()[-1])

    def test_loader_finds_it_by_name(self):
        target = self.install_package()
        result = self.probe(target)
        self.assertNotIn('error', result)
        self.assertEqual('snapdriver_thirdparty.Driver', result['class'])
        self.assertEqual(ENTRY_POINT_NAME, result['name'])
        self.assertEqual('snapdriver-thirdparty', result['distribution'])
        self.assertIn('snapdriver.drivers.base.BaseDriver', result['bases'])
        self.assertIn(ENTRY_POINT_NAME, result['installed'])
        # snapdriver's own drivers are still there.
        self.assertIn('fake', result['installed'])

    def test_api_serves_with_it(self):
        target = self.install_package()
        api = self.useFixture(server.ApiServerFixture(
            driver=ENTRY_POINT_NAME, env={'PYTHONPATH': target}))
        self.addOnException(lambda exc_info: self.addDetail(
            'snapdriver-api-log', content.text_content(api.log_text())))
        snapshot_id = '5a5a5a5a-0000-4000-8000-000000000001'
        answer = server.request(
            api.port, 'POST', '/v2.1/os-assisted-volume-snapshots',
            json.dumps({'snapshot': {
                'volume_id': 'vol-tp', 'create_info': {
                    'snapshot_id': snapshot_id, 'type': 'qcow2',
                    'new_file': 'tp-overlay'}}}),
            {'X-Auth-Token': 'admin:admin',
             'Content-Type': 'application/json'})
        self.assertEqual(200, answer.status, answer)
        self.assertEqual({'snapshot': {'id': None, 'volumeId': 'vol-tp'}},
                         answer.json())
        [operation] = server.wait_for_operations(api.port, snapshot_id)
        self.assertEqual('succeeded', operation['state'], operation)
        # Only the third-party driver knows this guest and this chain.
        self.assertEqual(GUEST, operation['guest'])
        self.assertEqual('sdz', operation['disk'])
        self.assertEqual(['tp-overlay', 'tp-base'], operation['chain'])
        self.assertIn('with the %s driver' % ENTRY_POINT_NAME,
                      api.log_text())

    def test_unknown_without_the_package(self):
        result = self.probe()
        self.assertNotIn(ENTRY_POINT_NAME, result['installed'])
        self.assertIn('DriverNotFound', result['error'])
        self.assertIn(ENTRY_POINT_NAME, result['error'])
        for name in result['installed']:
            self.assertIn(name, result['error'])

        tmp = self.useFixture(fixtures.TempDir()).path
        config = os.path.join(tmp, 'snapdriver.conf')
        server.write_config(config, {
            'DEFAULT': {'driver': ENTRY_POINT_NAME,
                        'status_reporter': 'log',
                        'auth_strategy': 'noauth'},
            'api': {'bind_host': '127.0.0.1',
                    'bind_port': server.free_port()},
            'database': {'connection': 'sqlite:///%s/journal.sqlite' % tmp}})
        code, output = server.run_to_exit(config, env=self.environment())
        self.addDetail('snapdriver-api-output', content.text_content(output))
        self.assertNotEqual(0, code)
        self.assertIn(ENTRY_POINT_NAME, output)
        for name in result['installed']:
            self.assertIn(name, output)


EXAMPLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))),
    'examples', 'snapdriver-example-driver')

#: Runs the example's tests as its README says (unittest discover), with
#: snapdriver's own test tree out of reach.
RUN_EXAMPLE_TESTS = """\
import sys
import unittest


class NoTestTree:
    def find_spec(self, name, path=None, target=None):
        if name == 'snapdriver.tests' or name.startswith('snapdriver.tests.'):
            raise ImportError('%s is not for drivers: use snapdriver.testing'
                              % name)
        return None


sys.meta_path.insert(0, NoTestTree())
unittest.main(module=None,
              argv=['unittest', 'discover', '-v', '-s', 'tests', '-t', '.'])
"""


class ExampleDriverTest(base.FunctionalTestCase):
    """The sample out-of-tree driver passes the contract suite."""

    def install_entry_points(self):
        """What installing the example gives snapdriver to find: its
        distribution's metadata with the entry points of its
        pyproject.toml, in a directory for PYTHONPATH."""
        if tomllib is None:
            self.skipTest('reading pyproject.toml needs Python 3.11')
        with open(os.path.join(EXAMPLE, 'pyproject.toml'), 'rb') as f:
            project = tomllib.load(f)['project']
        site = self.useFixture(fixtures.TempDir()).path
        info = os.path.join(site, '%s-%s.dist-info' % (
            project['name'].replace('-', '_'), project['version']))
        os.makedirs(info)
        with open(os.path.join(info, 'METADATA'), 'w') as f:
            f.write('Metadata-Version: 2.1\nName: %s\nVersion: %s\n'
                    % (project['name'], project['version']))
        with open(os.path.join(info, 'entry_points.txt'), 'w') as f:
            for group, points in project['entry-points'].items():
                f.write('[%s]\n' % group)
                f.writelines('%s = %s\n' % item for item in points.items())
                f.write('\n')
        return site

    def test_contract_suite_passes(self):
        site = self.install_entry_points()
        env = dict(os.environ,
                   PYTHONPATH=os.pathsep.join([EXAMPLE, site]))
        done = subprocess.run(
            [sys.executable, '-c', RUN_EXAMPLE_TESTS],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, cwd=EXAMPLE, timeout=300)
        output = done.stdout.decode('utf-8', 'replace')
        self.addDetail('example-tests', content.text_content(output))
        self.assertEqual(0, done.returncode, output)
        # Every test of the suite ran, none skipped.
        contract_tests = [name for name in dir(testing.DriverContractTests)
                          if name.startswith('test_')]
        self.assertIn('\nRan %d tests in ' % len(contract_tests), output)
        self.assertEqual('OK', output.strip().splitlines()[-1])
