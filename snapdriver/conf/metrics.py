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

"""Options of the [metrics] group (Prometheus)."""

from oslo_config import cfg

group = cfg.OptGroup(
    'metrics', title='Prometheus metrics',
    help="The Prometheus metrics of snapdriver-api (doc/deploying.md, "
         "'Metrics').")

opts = [
    cfg.BoolOpt('enabled', default=False,
                help="Serve the Prometheus metrics (doc/deploying.md, "
                     "'Metrics') at /metrics on the API's port, to callers "
                     "that authenticate and that the policy rule "
                     "snapdriver:metrics allows (admin by default). Off: "
                     "/metrics is a 404."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
