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

"""The API's side of the metrics: requests counted, and ``/metrics``."""

import pecan
import webob

from snapdriver.api.controllers import assisted_volume_snapshots as avs
from snapdriver.conf import CONF
from snapdriver import metrics
from snapdriver import policy


class CountRequests:
    """Count each answer by method and status code."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        method = environ.get('REQUEST_METHOD', '-')

        def counted(status, headers, exc_info=None):
            metrics.API_REQUESTS.labels(method, status.split()[0]).inc()
            return start_response(status, headers, exc_info)
        return self.application(environ, counted)


def scrape():
    """``GET /metrics``: the Prometheus text, when ``[metrics] enabled``
    and the policy allows the caller; a 404 when disabled."""
    if not CONF.metrics.enabled:
        pecan.abort(404)
    avs.check_context(None, policy.METRICS)
    body, content_type = metrics.exposition_text()
    response = webob.Response(body=body)
    response.headers['Content-Type'] = content_type
    return response
