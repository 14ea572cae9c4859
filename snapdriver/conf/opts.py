"""The oslo.config.opts entry point: every option snapdriver registers."""

from snapdriver import conf


def list_opts():
    """:returns: a list of (group, options) pairs for the generator."""
    pairs = {}
    for module in conf.MODULES:
        for group, opts in module.list_opts().items():
            pairs.setdefault(group, []).extend(opts)
    return sorted(pairs.items(), key=lambda pair: str(pair[0]))
