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

"""The request context.

oslo.context's RequestContext already reads what auth_token (or our noauth
middleware) puts in the WSGI environment, and serialises with
``to_dict``/``from_dict``, so that it can travel with an operation: into
the journal, to the status reporter, over RPC later. We add the caller's
service catalog, which the Cinder reporter needs to find Cinder when it
reports with the caller's token.
"""

import json

from oslo_context import context


class RequestContext(context.RequestContext):
    """A caller of the snapdriver API."""

    def __init__(self, service_catalog=None, **kwargs):
        super().__init__(**kwargs)
        self.service_catalog = service_catalog or []

    @classmethod
    def from_environ(cls, environ, **kwargs):
        if 'service_catalog' not in kwargs:
            try:
                catalog = json.loads(environ.get('HTTP_X_SERVICE_CATALOG')
                                     or '[]')
            except ValueError:
                catalog = []
            kwargs['service_catalog'] = (catalog if isinstance(catalog, list)
                                         else [])
        return super().from_environ(environ, **kwargs)

    def to_dict(self):
        values = super().to_dict()
        values['service_catalog'] = self.service_catalog
        return values

    @classmethod
    def from_dict(cls, values, **kwargs):
        kwargs.setdefault('service_catalog', values.get('service_catalog'))
        return super().from_dict(values, **kwargs)
