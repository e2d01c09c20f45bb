"""Local infrastructure for development and tests: real Kafka, real PostgreSQL, an SMTP sink."""

from devtools.proc import DevtoolsError, free_port, free_ports, pid_alive, port_open

__all__ = ["DevtoolsError", "free_port", "free_ports", "pid_alive", "port_open"]
