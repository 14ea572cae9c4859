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

"""The sample configuration and policy files are generated, and current."""

import os
import re

import yaml

from snapdriver.conf import opts
from snapdriver import policy
from snapdriver.tests import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ETC = os.path.join(TOP, 'etc', 'snapdriver')


class TestSamples(base.TestCase):

    def test_every_option_is_in_the_config_sample(self):
        found = set()
        section = None
        with open(os.path.join(ETC, 'snapdriver.conf.sample')) as f:
            for line in f:
                header = re.match(r'^\[(\w+)\]$', line)
                if header:
                    section = header.group(1)
                option = re.match(r'^#(\w+) =( |$)', line)
                if option:
                    found.add((section, option.group(1)))
        for group, options in opts.list_opts():
            for opt in options:
                self.assertIn((str(group), opt.dest), found,
                              "an option is missing from the sample: run "
                              "tools/generate-samples.sh")

    def test_policy_sample_matches_the_rules(self):
        with open(os.path.join(ETC, 'policy.yaml.sample')) as f:
            text = f.read()
        # Every rule appears commented out with its default check string.
        uncommented = yaml.safe_load(
            '\n'.join(line[1:] for line in text.splitlines()
                      if line.startswith('#"')))
        self.assertEqual({rule.name: rule.check_str
                          for rule in policy.list_rules()}, uncommented)
