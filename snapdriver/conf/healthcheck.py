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
