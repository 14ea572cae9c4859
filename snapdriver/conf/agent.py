"""Options of the [agent] group (snapdriver-agent)."""

from oslo_config import cfg

group = cfg.OptGroup('agent', title='Per-host agent')

opts = [
    cfg.IntOpt('report_interval', default=10, min=1,
               help="Seconds between two reports of an agent to the API "
                    "tier (its driver, version and the volume serials its "
                    "driver sees). An agent also reports at start and soon "
                    "after each operation ends."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
