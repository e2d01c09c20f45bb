"""Root conftest: real Kafka/PostgreSQL/SMTP fixtures for every test (see devtools.pytest_plugin)."""

pytest_plugins = ["devtools.pytest_plugin"]
