"""Root conftest: real Kafka, PostgreSQL and SMTP fixtures (see devtools.pytest_plugin)."""

pytest_plugins = ["devtools.pytest_plugin"]
