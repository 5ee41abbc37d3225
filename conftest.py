"""Root conftest: conformance suites use the testbed pytest plugin."""

pytest_plugins = ["testbed.testing.plugin"]
