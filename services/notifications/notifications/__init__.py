"""The notifications service: emails to residents, starting with submission receipts.

Layout, inside out:

* `domain/` — pure rules: a delivery's life cycle and retry schedule, receipt composition;
* `templates/` — the email wording (Jinja2; Polish, English);
* `service/` — use cases: queue a receipt on `SubmissionReceived`, dispatch pending emails;
* `adapters/` — PostgreSQL repository, SMTP sender;
* `entrypoints/` — Kafka subscriptions and publications, HTTP routes;
* `bootstrap.py` — wires it all onto the shared `ServiceRuntime`.
"""
