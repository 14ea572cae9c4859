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

"""Options of the [cinder] group: how status reports reach Cinder.

Authentication and session options come from keystoneauth's loading
helpers (``auth_type``, ``auth_url``, ``username``..., ``cafile``,
``timeout``...), as in every OpenStack service's ``[cinder]`` or ``[nova]``
section. With ``auth_type`` set, snapdriver reports with its own service
credentials, which do not expire during a two-hour merge; without it, it
uses the token of the caller that asked for the operation.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'cinder'
group = cfg.OptGroup(GROUP, title='Cinder status reports')

opts = [
    cfg.StrOpt('region_name',
               help="Region of the Cinder endpoint in the service catalog."),
    cfg.StrOpt('interface', default='internal',
               choices=['public', 'internal', 'admin'],
               help="Catalog interface of the Cinder endpoint."),
    cfg.StrOpt('service_type', default='volumev3',
               help="Catalog service type of Cinder's v3 API."),
    cfg.URIOpt('endpoint_override',
               help="Cinder v3 endpoint to use instead of the catalog's, "
                    "e.g. http://cinder.example.org:8776/v3/%(project_id)s. "
                    "%(project_id)s becomes the project of the token the "
                    "report is sent with (the service credentials' own, or "
                    "the caller's); when that is unknown the segment is "
                    "left out, which Cinder accepts from microversion "
                    "3.67."),
    cfg.IntOpt('report_deadline', default=7200, min=1,
               help="Seconds to keep retrying a status report that fails "
                    "for a transient reason (Cinder unreachable, 5xx, 429). "
                    "The default is Cinder's own wait for a delete. A report "
                    "still undelivered then is marked given up, logged, and "
                    "shown by GET on the snapshot's operations."),
    cfg.FloatOpt('report_initial_backoff', default=1.0, min=0.01,
                 help="Seconds before the first retry of a failed report; "
                      "the wait doubles (with jitter) after each failure."),
    cfg.FloatOpt('report_max_backoff', default=30.0, min=0.01,
                 help="Longest wait between two retries of a report."),
    cfg.FloatOpt('progress_timeout', default=5.0, min=0.1,
                 help="Seconds an intermediate progress update of a merge "
                      "may take (connection and answer). One that fails or "
                      "takes longer is dropped, never retried; the final "
                      "status of the merge waits at most this long for an "
                      "intermediate update still on its way, so that it "
                      "always reaches Cinder last."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)


def list_opts():
    return {group: (opts + ks_loading.get_session_conf_options()
                    + ks_loading.get_auth_common_conf_options()
                    + ks_loading.get_auth_plugin_conf_options('password'))}
