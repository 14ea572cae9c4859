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

"""Options of the [agent] group (snapdriver-agent)."""

from oslo_config import cfg

group = cfg.OptGroup(
    'agent', title='Per-host agent',
    help="snapdriver-agent, one per hypervisor host of a region: how often it "
         "tells the API tier that it is up and which volumes its driver "
         "sees.")

opts = [
    cfg.IntOpt('report_interval', default=10, min=1,
               help="Seconds between two reports of an agent to the API "
                    "tier (its driver, version and the volume serials its "
                    "driver sees). An agent also reports at start, and at "
                    "once whenever an API process asks: when that process "
                    "starts, and when no report names a volume it was "
                    "asked about. The API tier's [api] agent_down_time "
                    "must be several times this."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
