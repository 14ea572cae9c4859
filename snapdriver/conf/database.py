"""Options of the [database] group (the operation journal)."""

from oslo_config import cfg

group = cfg.OptGroup('database', title='Operation journal')

opts = [
    cfg.StrOpt('connection',
               default='sqlite:////var/lib/snapdriver/snapdriver.sqlite',
               secret=True,
               help="SQLAlchemy URL of the operation journal. The default, "
                    "an SQLite file, needs no server; its directory is "
                    "created (mode 0700) and the file is made readable by "
                    "its owner only, since without [cinder] service "
                    "credentials it keeps callers' tokens until their "
                    "status reports are delivered."),
    cfg.StrOpt('sqlite_synchronous', default='NORMAL',
               choices=[('NORMAL', 'Every accepted operation and every '
                                   'transition survives a crash or SIGKILL '
                                   'of snapdriver (WAL mode).'),
                        ('FULL', 'They also survive a power cut of the '
                                 'host, at the cost of an fsync for each '
                                 'transition.')],
               help="SQLite durability of the journal (ignored for other "
                    "databases)."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
