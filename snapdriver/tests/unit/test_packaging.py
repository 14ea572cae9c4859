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

"""The packaging files agree with one another and with the source tree.

These read the repository's own files, so they skip when snapdriver runs
from an installed copy without them.
"""

import configparser
import os
import re

from snapdriver.tests import base

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
HEADER = 'Licensed under the Apache License, Version 2.0'


def _requirements(path):
    with open(path) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


class TestPackaging(base.TestCase):

    def _path(self, *parts):
        path = os.path.join(TOP, *parts)
        if not os.path.exists(path):
            self.skipTest('%s is not here (an installed copy?)'
                          % os.path.join(*parts))
        return path

    def _pyproject(self):
        if tomllib is None:
            self.skipTest('reading pyproject.toml needs Python 3.11')
        with open(self._path('pyproject.toml'), 'rb') as f:
            return tomllib.load(f)

    def test_libvirt_extra_is_libvirt_requirements(self):
        setup_cfg = configparser.ConfigParser()
        setup_cfg.read(self._path('setup.cfg'))
        extra = [line.strip() for line in
                 setup_cfg.get('extras', 'libvirt').splitlines()
                 if line.strip()]
        self.assertEqual(
            _requirements(self._path('libvirt-requirements.txt')), extra)

    def test_python_range_and_classifiers_agree(self):
        project = self._pyproject()['project']
        minimum = re.fullmatch(r'>=3\.(\d+)', project['requires-python'])
        self.assertIsNotNone(minimum, project['requires-python'])
        versions = sorted(
            int(m.group(1)) for m in
            (re.fullmatch(r'Programming Language :: Python :: 3\.(\d+)', c)
             for c in project['classifiers']) if m)
        self.assertEqual(int(minimum.group(1)), versions[0])

    def test_setup_cfg_does_not_repeat_the_python_range(self):
        # pyproject.toml holds it; a second copy in setup.cfg would drift.
        setup_cfg = configparser.ConfigParser()
        setup_cfg.read(self._path('setup.cfg'))
        self.assertFalse(setup_cfg.has_option('metadata', 'python_requires'))

    def test_every_module_has_the_licence_header(self):
        missing = []
        for top in ('snapdriver', 'tools'):
            for root, dirs, files in os.walk(self._path(top)):
                dirs[:] = [d for d in dirs if d != '__pycache__']
                for name in files:
                    if not name.endswith('.py'):
                        continue
                    path = os.path.join(root, name)
                    with open(path) as f:
                        if HEADER not in f.read(2000):
                            missing.append(os.path.relpath(path, TOP))
        self.assertEqual([], missing)
