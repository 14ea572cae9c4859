"""Options of the [metrics] group (Prometheus)."""

from oslo_config import cfg

group = cfg.OptGroup('metrics', title='Prometheus metrics')

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
