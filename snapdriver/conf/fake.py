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

"""Options of the [fake] group (the in-memory fake driver)."""

from oslo_config import cfg

group = cfg.OptGroup(
    'fake', title='Fake driver',
    help="The in-memory fake driver ([DEFAULT] driver = fake), for tests "
         "and demos: its guests, and how long its work pretends to take.")

opts = [
    cfg.StrOpt('inventory_file',
               help="JSON or YAML file describing the guests, disks and "
                    "chains the fake driver pretends to host. Empty: no "
                    "guests."),
    cfg.BoolOpt('assume_overlays', default=False,
                help="Treat a new_file that the inventory does not list as "
                     "a qcow2 overlay of the active image, as Cinder would "
                     "have created it (demos). Off: such a file does not "
                     "exist, exactly as with the libvirt driver."),
    cfg.FloatOpt('operation_delay', default=0.0, min=0.0,
                 help="Seconds each create or delete pretends to take."),
]


def register_opts(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts}
