"""The per-host agent (``snapdriver-agent``) and its RPC API.

With ``[api] dispatch = agents`` the API tier holds no operation state: it
finds the volume's host and sends the request to that host's agent, which
runs the driver, the journal, recovery and the status reports exactly as a
single-process snapdriver does.
"""
