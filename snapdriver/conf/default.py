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

"""Options of the [DEFAULT] group."""

import socket

from oslo_config import cfg

opts = [
    cfg.StrOpt('host',
               default=socket.gethostname(),
               sample_default='<the machine\'s host name>',
               help="This host's name. An agent (snapdriver-agent) serves "
                    "the guests of the host of this name, and the API tier "
                    "sends it the requests for the volumes attached there: "
                    "it must equal the host name under which the volumes "
                    "were attached (Cinder's attachment host_name; for "
                    "nova-compute, its [DEFAULT] host)."),
    cfg.StrOpt('driver',
               help="Name of the hypervisor driver, an entry point in the "
                    "'snapdriver.drivers' namespace: 'libvirt' on a real "
                    "host, 'fake' for tests and demos, or a third-party "
                    "driver. The stub drivers (vmware, hyperv, ironic, zvm, "
                    "powervm, xenapi) load but reject every request. No "
                    "default: a service that runs operations (snapdriver-api "
                    "without [api] dispatch = agents, snapdriver-agent) "
                    "does not start without it."),
    cfg.StrOpt('auth_strategy',
               default='keystone',
               choices=[('keystone', 'Validate tokens with keystonemiddleware '
                                     'auth_token ([keystone_authtoken]).'),
                        ('noauth', 'DEVELOPMENT ONLY: trust the token '
                                   '"<user>:<project>"; user admin is an '
                                   'administrator.')],
               help="How API callers are authenticated."),
    cfg.StrOpt('status_reporter',
               help="Where the outcome of each operation is reported: an "
                    "entry point in 'snapdriver.status_reporters'. 'cinder' "
                    "sends it to Cinder (production, see [cinder]); 'log' "
                    "only logs it (development: Cinder never learns the "
                    "outcome). No default, as for the driver."),
    cfg.IntOpt('operation_workers',
               default=8, min=1,
               help="How many merges (snapshot deletes) may run at once, "
                    "on different volumes; operations on one volume always "
                    "run one at a time, in order, and a driver may run "
                    "fewer at once (libvirt: one block job per guest)."),
    cfg.IntOpt('create_workers',
               default=4, min=1,
               help="How many creates (snapshot switches) may run at once, "
                    "on different volumes. Creates have workers of their "
                    "own so that they never wait behind other volumes' "
                    "merges, which can take hours: Cinder gives a create "
                    "600 seconds."),
    cfg.IntOpt('create_timeout',
               default=600, min=1,
               help="Seconds after it was accepted within which a create "
                    "must start. Cinder waits 600 seconds for a create and "
                    "then keeps the old active image in its records; a "
                    "create that starts later (queued behind a merge of "
                    "the same volume, or taken up after a restart) would "
                    "switch the guest onto an overlay that Cinder does not "
                    "track. Such a create fails without touching the disk "
                    "and is reported as 'error'. Keep it at most Cinder's "
                    "wait."),
    cfg.IntOpt('report_workers',
               default=64, min=1,
               help="How many status reports may be in delivery at once. "
                    "A report that keeps failing holds its worker while it "
                    "retries (up to [cinder] report_deadline), so this "
                    "bounds how many reports can wait out an outage of "
                    "Cinder before later ones queue behind them; GET shows "
                    "a queued report as pending with no attempt yet."),
    cfg.IntOpt('report_sweep_interval',
               default=60, min=1,
               help="Seconds between two looks at the journal for status "
                    "reports still pending (their delivery failed in a way "
                    "the reporter did not foresee) that nothing is "
                    "sending; each is sent again. Reports given up after "
                    "[cinder] report_deadline are not."),
    cfg.FloatOpt('progress_interval',
                 default=2.0, min=0.05,
                 help="Seconds between two looks at how far each running "
                      "merge is (its block job, or qemu-img for a stopped "
                      "guest). Each look updates the journal (GET and "
                      "'snapdriver-manage operations watch' show it), logs "
                      "every 10 percent, and may send Cinder an "
                      "intermediate update."),
    cfg.IntOpt('progress_report_step',
               default=10, min=0, max=89,
               help="Percent of a merge between two intermediate status "
                    "updates to Cinder ('deleting' with progress below "
                    "90%, which 'openstack volume snapshot show' shows). "
                    "0: send none, only the final one."),
    cfg.FloatOpt('progress_report_interval',
                 default=30.0, min=0.0,
                 help="Least seconds between two intermediate status "
                      "updates of one merge: an update goes when both the "
                      "step and this interval have passed. Intermediate "
                      "updates are never retried, and none is sent once "
                      "the merge ended."),
    cfg.IntOpt('operation_history',
               default=1000, min=1,
               help="How many finished and reported operations the journal "
                    "keeps for GET; older ones are forgotten."),
    cfg.IntOpt('malloc_arenas', default=2, min=0,
               help="At most this many glibc malloc arenas in "
                    "snapdriver-api and snapdriver-agent (as "
                    "MALLOC_ARENA_MAX does); 0 leaves glibc's default (8 "
                    "per CPU). Threads that allocate at the same time get "
                    "arenas of their own and keep their memory: with few "
                    "arenas the resident memory of a threaded service "
                    "stays lower (measured in doc/benchmarks.md, table "
                    "M)."),
    cfg.BoolOpt('single_cpu', default=True,
                help="Run the threads of snapdriver-api and "
                     "snapdriver-agent on one CPU (one of those the "
                     "process may use, chosen by its pid, so that several "
                     "processes spread). A Python process runs Python code "
                     "on one CPU at a time anyway (the GIL); threads on "
                     "different CPUs handing the GIL to each other cost "
                     "far more than they gain: measured on 2 CPUs, 90 GETs "
                     "per second at 8 connections without, 958 with "
                     "(doc/benchmarks.md). Programs it starts (qemu-img) "
                     "are not confined. Under uWSGI use its cpu-affinity "
                     "option instead."),
]


def register_opts(conf):
    conf.register_opts(opts)


def list_opts():
    return {'DEFAULT': opts}
