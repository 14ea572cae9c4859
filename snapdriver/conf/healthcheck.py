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

"""The [healthcheck] group: oslo.middleware's health check options, with
snapdriver's checks as the default backends (see snapdriver.api.health)."""

from oslo_config import cfg
from oslo_middleware.healthcheck import opts as healthcheck_opts

BACKENDS = ['disable_by_file', 'snapdriver_driver', 'snapdriver_journal',
            'snapdriver_broker']

# On the option objects themselves (a reset configuration keeps them).
cfg.set_defaults(healthcheck_opts.HEALTHCHECK_OPTS, backends=BACKENDS)


def register_opts(conf):
    conf.register_opts(healthcheck_opts.HEALTHCHECK_OPTS, group='healthcheck')


def list_opts():
    return {'healthcheck': healthcheck_opts.HEALTHCHECK_OPTS}
