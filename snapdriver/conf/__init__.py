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

"""snapdriver's configuration: one module per option group.

Each module has ``register_opts(conf)`` and ``list_opts()`` built from the
same lists, so the generated sample cannot drift from what is registered.
"""

from oslo_config import cfg
from oslo_log import log
from oslo_reports import opts as gmr_opts

from snapdriver.conf import agent
from snapdriver.conf import api
from snapdriver.conf import cinder
from snapdriver.conf import database
from snapdriver.conf import default
from snapdriver.conf import fake
from snapdriver.conf import healthcheck
from snapdriver.conf import libvirt
from snapdriver.conf import metrics

CONF = cfg.CONF

MODULES = (default, agent, api, cinder, database, fake, healthcheck,
           libvirt, metrics)

for _module in MODULES:
    _module.register_opts(CONF)
log.register_options(CONF)
# [oslo_reports]: where the Guru Meditation Reports go (registers them).
gmr_opts.set_defaults(CONF)
