"""Host locators: where is a volume attached? (``[api] host_locator``)

Loaded by entry point from the ``snapdriver.host_locators`` namespace; see
:class:`.base.HostLocator`.
"""
