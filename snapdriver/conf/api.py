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

"""Options of the [api] group."""

from oslo_config import cfg

group = cfg.OptGroup(
    'api', title='REST API server',
    help="snapdriver-api: where it listens, the limits it puts on requests, "
         "and, in a region, how it dispatches requests to the agents "
         "(dispatch, host_locator, agent_timeout, agent_down_time).")

opts = [
    cfg.HostAddressOpt('bind_host', default='0.0.0.0',
                       help="Address the snapdriver-api server listens on."),
    cfg.PortOpt('bind_port', default=8774,
                help="Port the snapdriver-api server listens on (8774 is "
                     "the compute API's, which Cinder expects)."),
    cfg.BoolOpt('noauth_allow_remote', default=False,
                help="With [DEFAULT] auth_strategy = noauth, snapdriver-api "
                     "refuses to start on a bind_host that is not a "
                     "loopback address: noauth trusts any token, so anyone "
                     "who can reach the port is an administrator. Set to "
                     "true only on a network nobody else can reach."),
    cfg.IntOpt('threads', default=8, min=1,
               help="snapdriver-api (the console script's waitress "
                    "server): threads that run requests. Connections are "
                    "read and written without a thread; a request takes "
                    "one only once it has fully arrived."),
    cfg.IntOpt('connection_limit', default=1000, min=1,
               help="snapdriver-api: open client connections served at "
                    "once; beyond it new connections wait in the listen "
                    "backlog until one closes."),
    cfg.IntOpt('client_socket_timeout', default=30, min=1,
               help="snapdriver-api: seconds a client connection may stay "
                    "idle (nothing received, nothing to send) before it is "
                    "closed, a request that stopped half way included."),
    cfg.IntOpt('max_request_header_size', default=65536, min=4096,
               help="snapdriver-api: largest request line and headers "
                    "together, in bytes; larger ones are refused with "
                    "431."),
    cfg.IntOpt('max_request_body_size', default=65536, min=1024,
               help="Largest request body accepted, in bytes; larger "
                    "bodies are refused with 413 before they are read."),
    cfg.IntOpt('max_query_string_length', default=16384, min=1024,
               help="Longest query string accepted, in bytes (delete_info "
                    "travels there); longer ones are refused with 400."),
    cfg.StrOpt('dispatch', default='local',
               choices=[('local', 'This process runs the operations, with '
                                  'the driver of [DEFAULT] driver: one host, '
                                  'no message broker.'),
                        ('agents', 'The API tier of a region: each request '
                                   'goes, over oslo.messaging ([DEFAULT] '
                                   'transport_url), to the snapdriver-agent '
                                   'of the host where the volume is '
                                   'attached. No driver is loaded here.')],
               help="Where accepted operations run."),
    cfg.StrOpt('host_locator', default='agents',
               help="With dispatch = agents, how the host of a volume is "
                    "found: an entry point in 'snapdriver.host_locators'. "
                    "'agents': from the volume serials every agent reports; "
                    "'cinder': from the volume's attachments in Cinder "
                    "(host_name), read with the [cinder] credentials."),
    cfg.IntOpt('agent_timeout', default=30, min=1,
               help="With dispatch = agents, seconds to wait for an agent's "
                    "answer. A request the agent has not answered by then "
                    "is answered 503, and the agent never carries it out "
                    "later: the message expires, and the agent refuses a "
                    "request whose deadline has passed (keep the hosts' "
                    "clocks synchronised)."),
    cfg.IntOpt('agent_down_time', default=60, min=1,
               help="With dispatch = agents, an agent silent for this many "
                    "seconds is shown as down."),
    cfg.IntOpt('locator_cache_time', default=30, min=0,
               help="With dispatch = agents, seconds a volume's host found "
                    "by the 'cinder' locator is reused before Cinder is "
                    "asked again (0: ask every time). A wrong host is "
                    "harmless: its agent refuses the volume with a 400."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
