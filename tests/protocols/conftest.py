"""Hypothesis settings for the protocol tests.

The CI machine has two noisy cores: per-example deadlines would turn load
into flaky failures, so they are off; example counts are set per test.
"""

from hypothesis import settings

settings.register_profile("didcommd", deadline=None, print_blob=True)
settings.load_profile("didcommd")
