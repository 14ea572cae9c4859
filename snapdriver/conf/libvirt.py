"""Options of the [libvirt] group (the libvirt driver)."""

from oslo_config import cfg

group = cfg.OptGroup('libvirt', title='libvirt driver')

opts = [
    cfg.StrOpt('connection_uri', default='qemu:///system',
               help="libvirt connection URI of this host's hypervisor."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
