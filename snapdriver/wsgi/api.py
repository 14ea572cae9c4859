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

"""WSGI entry point for uwsgi / gunicorn.

``application`` is built at import time from the configuration file named
by $SNAPDRIVER_CONFIG (default /etc/snapdriver/snapdriver.conf).

Run ONE process per host, with as many threads as you like (uwsgi
``processes = 1``, ``threads = 8``, ``lazy-apps = true``; gunicorn
``--workers 1 --threads 8``): the operation manager that this process
starts owns the host's queues, takes up unfinished operations from the
journal at start, and runs the libvirt event loop; a second process would
do all of that again.
"""

import os

from snapdriver import service


def initialize_application():
    config = os.environ.get('SNAPDRIVER_CONFIG',
                            '/etc/snapdriver/snapdriver.conf')
    service.prepare([], default_config_files=[config])
    application, runner = service.build_wsgi_app()
    runner.start()
    return application


application = initialize_application()
