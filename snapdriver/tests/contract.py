"""The driver contract suite moved to :mod:`snapdriver.testing`, which
snapdriver ships for out-of-tree drivers; these names stay for in-tree
tests that import them from here."""

from snapdriver.testing.contract import DriverContractTests
from snapdriver.testing.contract import Host
from snapdriver.testing.contract import RecordingReporter
from snapdriver.testing.contract import UnsupportedDriverContractTests

__all__ = ['DriverContractTests', 'Host', 'RecordingReporter',
           'UnsupportedDriverContractTests']
