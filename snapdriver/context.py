"""The request context.

oslo.context's RequestContext already reads what auth_token (or our noauth
middleware) puts in the WSGI environment, and serialises with
``to_dict``/``from_dict``, so that it can travel with an operation: to the
status reporter today, over RPC later.
"""

from oslo_context import context


class RequestContext(context.RequestContext):
    """A caller of the snapdriver API."""
