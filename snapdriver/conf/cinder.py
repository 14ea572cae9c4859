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

Authentication, session and adapter options come from keystoneauth's
loading helpers (``auth_type``, ``auth_url``, ``username``..., ``cafile``,
``timeout``..., ``service_type``, ``valid_interfaces``, ``region_name``,
``endpoint_override``...), as in every OpenStack service's ``[cinder]`` or
``[nova]`` section. With ``auth_type`` set, snapdriver reports with its own
service credentials, which do not expire during a two-hour merge; without
it, it uses the token of the caller that asked for the operation.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'cinder'
group = cfg.OptGroup(
    GROUP, title='Cinder status reports',
    help="How the cinder status reporter reaches Cinder: keystoneauth's "
         "session, authentication (snapdriver's own service credentials; "
         "without them the caller's token) and adapter options, and how "
         "long a report is retried.")

ENDPOINT_OVERRIDE_HELP = (
    "Cinder v3 endpoint to use instead of the catalog's, e.g. "
    "http://cinder.example.org:8776/v3/%(project_id)s. %(project_id)s "
    "becomes the project of the token the report is sent with (the service "
    "credentials' own, or the caller's); when that is unknown the segment "
    "is left out, which Cinder accepts from microversion 3.67.")


#: keystoneauth's version discovery: cinderclient speaks Cinder's v3 API with
#: microversions of its own, so these are registered (keystoneauth reads
#: them) but not used.
UNUSED_ADAPTER_OPTIONS = ('version', 'min_version', 'max_version')

#: The catalog interface used when neither ``valid_interfaces`` nor the
#: deprecated ``interface`` is set (as before they came from keystoneauth).
DEFAULT_INTERFACE = 'internal'


def _adapter_opts():
    """keystoneauth's adapter options: where Cinder's endpoint is found.

    The options ``ks_loading.register_adapter_conf_options()`` registers
    (``service_type``, ``valid_interfaces``, ``region_name``,
    ``endpoint_override``, retries..., and ``interface``, deprecated in
    favour of ``valid_interfaces``), as in every service's ``[cinder]`` or
    ``[nova]`` section, with snapdriver's default service type and its
    meaning of ``endpoint_override`` (the v3 endpoint).
    """
    adapter_opts = ks_loading.get_adapter_conf_options(include_deprecated=True)
    cfg.set_defaults(adapter_opts, service_type='volumev3')
    for opt in adapter_opts:
        if opt.dest == 'service_type':
            opt.help = "Catalog service type of Cinder's v3 API."
        elif opt.dest == 'valid_interfaces':
            opt.help = ("Catalog interfaces of the Cinder endpoint, in order "
                        "of preference (public, internal, admin). When "
                        "neither this nor the deprecated 'interface' is set: "
                        "%s." % DEFAULT_INTERFACE)
        elif opt.dest == 'endpoint_override':
            opt.help = ENDPOINT_OVERRIDE_HELP
        elif opt.dest in UNUSED_ADAPTER_OPTIONS:
            opt.help = ("Not used: snapdriver always speaks Cinder's v3 "
                        "API (keystoneauth's version discovery).")
    return adapter_opts


adapter_opts = _adapter_opts()

opts = [
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
    # What ks_loading.register_adapter_conf_options() registers, with the
    # defaults above.
    conf.register_opts(adapter_opts, group=group)
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)


def list_opts():
    return {group: (opts + adapter_opts
                    + ks_loading.get_session_conf_options()
                    + ks_loading.get_auth_common_conf_options()
                    + ks_loading.get_auth_plugin_conf_options('password'))}
