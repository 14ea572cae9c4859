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

"""Options of the [libvirt] group (the libvirt driver)."""

from oslo_config import cfg

group = cfg.OptGroup(
    'libvirt', title='libvirt driver',
    help="The libvirt driver ([DEFAULT] driver = libvirt): the libvirtd it "
         "talks to, quiescing, block jobs (timeouts, bandwidth) and the "
         "limits put on qemu-img.")

QUIESCE_CHOICES = [
    ('never', 'Do not ask for a quiesced snapshot: no guest agent is '
              'expected.'),
    ('try', 'Ask libvirt to freeze the guest file systems through the QEMU '
            'guest agent; if libvirt refuses (no agent, agent not '
            'responding), take the snapshot once more without quiescing.'),
    ('require', 'Ask for a quiesced snapshot and fail the create if libvirt '
                'refuses.'),
]

opts = [
    cfg.StrOpt('connection_uri', default='qemu:///system',
               help="libvirt connection URI of this host's hypervisor."),
    cfg.StrOpt('quiesce', default='try', choices=QUIESCE_CHOICES,
               help="Whether snapshots are taken with the guest's file "
                    "systems frozen. A domain can override this with "
                    "<snapdriver:quiesce>never|try|require</snapdriver:"
                    "quiesce> in its <metadata>, namespace "
                    "https://snapdriver.invalid/xmlns/domain/1.0. A guest "
                    "that is not running is never quiesced."),
    cfg.BoolOpt('allow_compute_managed_guests', default=False,
                help="Whether to change the disk chains of guests that "
                     "nova-compute manages (domains with metadata in the "
                     "namespace http://openstack.org/xmlns/libvirt/nova/, "
                     "any version). By default their creates and deletes "
                     "are refused with a 400 before anything changes. "
                     "RISK OF DATA LOSS when true: nova-compute rebuilds "
                     "such a guest's disks from its own record of the "
                     "volume's connection info, which only its own assisted "
                     "snapshots update, so at the guest's next hard reboot "
                     "or migration by the compute service the guest reopens "
                     "the image that was active before snapdriver switched "
                     "it, and every write made since is lost. Only set it "
                     "where nothing but snapdriver changes those guests' "
                     "disks and the compute service's records are kept "
                     "right by other means."),
    cfg.IntOpt('disk_index_refresh', default=60, min=0,
               help="Seconds after which the index of disks by serial is "
                    "rebuilt by reading every guest's XML. Between two "
                    "rebuilds a request reads only the guests that the "
                    "index names (checked: a wrong entry means a full "
                    "read), and libvirt's domain events name the guests to "
                    "read again, so the cost of a request does not grow "
                    "with the number of guests. 0 reads every guest for "
                    "every request."),
    cfg.IntOpt('block_job_timeout', default=7200, min=1,
               help="Seconds a block pull or commit of a running guest may "
                    "take; a job still running then is aborted and the "
                    "delete reported as failed."),
    cfg.IntOpt('merge_bandwidth', default=0, min=0,
               help="MiB per second a block pull or commit of a running "
                    "guest may copy; 0 leaves it to QEMU (as fast as the "
                    "storage allows). A limit keeps a long merge from "
                    "taking the whole of a shared storage's bandwidth from "
                    "the guests, at the price of a longer merge: Cinder "
                    "waits for a delete up to two hours. Offline merges "
                    "(qemu-img, stopped guests) are not limited."),
    cfg.FloatOpt('block_job_poll_interval', default=0.5, min=0.01,
                 help="Seconds between two looks at a running block job. "
                      "libvirt's block job events normally end the wait "
                      "sooner; polling covers lost events."),
    cfg.IntOpt('qemu_img_address_space_mb', default=1024, min=64,
               help="Address space limit, in MiB, of 'qemu-img info' (it "
                    "reads headers that callers control): it guards against "
                    "headers crafted to make qemu-img allocate without "
                    "bound. Not applied to commit and rebase, which copy "
                    "data and run I/O threads."),
    cfg.IntOpt('qemu_img_cpu_time', default=30, min=1,
               help="CPU seconds limit of 'qemu-img info' (it only reads "
                    "headers). Not applied to commit and rebase, which copy "
                    "data."),
    cfg.IntOpt('qemu_img_info_timeout', default=30, min=1,
               help="Seconds a 'qemu-img info' (reading headers, while a "
                    "request waits) may take before it is killed and the "
                    "request answered 503: a share that hangs must not "
                    "hang the API."),
    cfg.IntOpt('qemu_img_timeout', default=7200, min=1,
               help="Seconds a 'qemu-img commit' or 'qemu-img rebase' of a "
                    "stopped guest's disk may take before it is killed. "
                    "Killing one leaves a consistent chain: the images above "
                    "the merge are relinked only after the copy succeeded."),
    cfg.BoolOpt('verify_header_reader', default=False, advanced=True,
                help="For tests: each time the in-process qcow2 header "
                     "reader answers (instead of 'qemu-img info'), run "
                     "'qemu-img info' as well and fail the operation if the "
                     "two disagree on the format, the backing file, its "
                     "format, the external data file or the virtual size. "
                     "Costs a qemu-img run per header read; not for "
                     "production."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
