"""Options of the [api] group."""

from oslo_config import cfg

group = cfg.OptGroup('api', title='REST API server')

opts = [
    cfg.HostAddressOpt('bind_host', default='0.0.0.0',
                       help="Address the snapdriver-api server listens on."),
    cfg.PortOpt('bind_port', default=8774,
                help="Port the snapdriver-api server listens on (8774 is "
                     "the compute API's, which Cinder expects)."),
    cfg.IntOpt('max_request_body_size', default=65536, min=1024,
               help="Largest request body accepted, in bytes; larger "
                    "bodies are refused with 413 before they are read."),
    cfg.IntOpt('max_query_string_length', default=16384, min=1024,
               help="Longest query string accepted, in bytes (delete_info "
                    "travels there); longer ones are refused with 400."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
