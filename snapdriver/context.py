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
