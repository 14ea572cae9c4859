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

"""What a driver's tests need, shipped with snapdriver.

The driver contract suite that snapdriver's own drivers run, importable
from the installed package by a driver in a distribution of its own::

    from snapdriver import testing

    class MyHost(testing.Host):
        def __init__(self, test):
            test.conf.config(..., group='mydriver')
            self._driver = testing.load_driver('mydriver')
        ...

    class TestMyDriverContract(testing.DriverContractTests,
                               testing.TestCase):
        def make_host(self):
            return MyHost(self)

It needs testtools and fixtures, which snapdriver's test requirements
name. Nothing here imports ``snapdriver.tests``, which is snapdriver's own
test tree and no interface.
"""

from snapdriver.testing.base import ConfFixture
from snapdriver.testing.base import load_driver
from snapdriver.testing.base import TestCase
from snapdriver.testing.contract import DriverContractTests
from snapdriver.testing.contract import Host
from snapdriver.testing.contract import RecordingReporter
from snapdriver.testing.contract import UnsupportedDriverContractTests

__all__ = ['ConfFixture', 'DriverContractTests', 'Host', 'RecordingReporter',
           'TestCase', 'UnsupportedDriverContractTests', 'load_driver']
