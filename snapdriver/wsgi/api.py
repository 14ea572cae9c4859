"""WSGI entry point for uwsgi / gunicorn.

``application`` is built at import time from the configuration file named
by $SNAPDRIVER_CONFIG (default /etc/snapdriver/snapdriver.conf).
"""

import os

from snapdriver import service


def initialize_application():
    config = os.environ.get('SNAPDRIVER_CONFIG',
                            '/etc/snapdriver/snapdriver.conf')
    service.prepare([], default_config_files=[config])
    application, _manager = service.build_wsgi_app()
    return application


application = initialize_application()
